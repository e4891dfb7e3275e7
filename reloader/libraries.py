"""Shared library lookups: what `ctypes.util.find_library` answered, kept for the server's life.

On Linux each `find_library` call runs `ldconfig -p`, and for a name the linker's cache does
not hold, `gcc` and `ld` too: 10 to 20 ms a name, more on a busy machine. A module that looks
for a library as it is imported makes every fresh process pay that again. GeoDjango tries
about twenty names for GDAL, and django-debug-toolbar's SQL panel imports it, GDAL or not:
0.24 s of every boot of a project with the toolbar, on a machine with a compiler and no GDAL.
The answer for a name changes only with the linker's cache and the search paths, so the
processes of one server keep the answers, with those, in the directory they share: a fresh
process runs the lookup only for a name none has asked for since the last change of either.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.abc
import importlib.machinery
import json
import os
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

from .rendezvous import replace_file

__all__ = ["RECORD", "share_library_lookups"]

RECORD = "library-lookups"
"""Its name in the directory the processes share (not `*.json`: in warm mode's run directory
that would pass for a worker's report)."""
LINKER_CACHE = "/etc/ld.so.cache"
SEARCH_PATHS = ("LD_LIBRARY_PATH", "LIBRARY_PATH", "PATH")
"""The environment `find_library` searches with (`PATH` finds `gcc` and `ld`)."""

Lookup = Callable[[str], "str | None"]


def share_library_lookups(directory: Path) -> None:
    """From now on, answer this process's `ctypes.util.find_library` calls from `directory`
    where another process of the server asked before. Only on Linux, where a lookup spawns
    programs. Imports nothing: until something imports `ctypes.util`, only a finder waits for
    it on `sys.meta_path`."""
    if not sys.platform.startswith("linux"):
        return
    util = sys.modules.get("ctypes.util")
    if util is not None:
        _share(util, directory)
    else:
        sys.meta_path.insert(0, _WhenImported(directory))


class _WhenImported(importlib.abc.MetaPathFinder):
    """Waits for the import of `ctypes.util`, once, to share its lookups when it has run."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "ctypes.util":
            return None
        with contextlib.suppress(ValueError):  # another thread's import found it first
            sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def run_then_share(module: ModuleType) -> None:
            exec_module(module)
            _share(module, self.directory)

        # The loader is this module's own (a SourceFileLoader made for this spec), so the
        # change reaches no other import.
        spec.loader.exec_module = run_then_share  # type: ignore[method-assign]
        return spec


def _share(util: ModuleType, directory: Path) -> None:
    original: Lookup = util.find_library
    if hasattr(original, "__wrapped__"):
        return  # a parent process shared them already
    lookups = _Lookups(directory / RECORD)

    @functools.wraps(original)
    def find_library(name: str) -> str | None:
        if not isinstance(name, str):
            return original(name)
        return lookups.find(name, original)

    util.find_library = find_library  # type: ignore[attr-defined]


class _Lookups:
    """The answers in one file, with what they depend on; a file made on another basis is
    as good as none."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()

    def find(self, name: str, lookup: Lookup) -> str | None:
        basis = _basis()
        known = self._read(basis)
        if name in known:
            return known[name]
        found = lookup(name)
        with self.lock:
            known = self._read(basis)
            known[name] = found
            with contextlib.suppress(OSError):  # the next process asks again
                replace_file(self.path, json.dumps({"basis": basis, "found": known}))
        return found

    def _read(self, basis: list[object]) -> dict[str, str | None]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("basis") != basis:
            return {}
        found = data.get("found")
        if not isinstance(found, dict):
            return {}
        return {
            str(name): path for name, path in found.items() if path is None or isinstance(path, str)
        }


def _basis() -> list[object]:
    """What `find_library`'s answers depend on: the linker cache's identity (`ldconfig`
    replaces it when a library is installed) and the search paths."""
    try:
        cache = os.stat(LINKER_CACHE)
        identity: list[int] | None = [cache.st_ino, cache.st_size, cache.st_mtime_ns]
    except OSError:
        identity = None
    return [identity, *(os.environ.get(name) for name in SEARCH_PATHS)]
