"""Stale bytecode. A `.pyc` records its source's mtime in whole seconds and its size, so after
two saves within one second that keep the size (`"v3"` -> `"v4"`), the `.pyc` compiled from
the first passes for current: a fresh process would import the old code."""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["discard_bytecode", "stale_bytecode"]

_HEADER = 16  # magic, flags, source mtime (s), source size


def _cache(source: Path) -> Path | None:
    if source.suffix != ".py":
        return None
    try:
        return Path(importlib.util.cache_from_source(str(source)))
    except (ValueError, NotImplementedError):
        return None


def discard_bytecode(sources: Iterable[Path]) -> None:
    """Remove the cached bytecode of changed `.py` files, so their next import compiles the
    source. Another process may have removed it already; that is fine."""
    for source in sources:
        cache = _cache(source)
        if cache is not None:
            with contextlib.suppress(OSError):
                cache.unlink(missing_ok=True)


def stale_bytecode(sources: Iterable[Path]) -> set[Path]:
    """The `.py` files whose `.pyc` the import system takes for current although it was
    written before the source's last change: a process that imported them runs old code."""
    stale = set()
    for source in sources:
        cache = _cache(source)
        if cache is None:
            continue
        try:
            src = os.stat(source)
            pyc = os.stat(cache)
            with open(cache, "rb") as file:
                header = file.read(_HEADER)
        except OSError:
            continue
        if len(header) < _HEADER or int.from_bytes(header[4:8], "little") != 0:
            continue  # hash-based bytecode is checked against the source's content
        recorded_mtime = int.from_bytes(header[8:12], "little")
        recorded_size = int.from_bytes(header[12:16], "little")
        current = (int(src.st_mtime) & 0xFFFFFFFF, src.st_size & 0xFFFFFFFF)
        if (recorded_mtime, recorded_size) == current and pyc.st_mtime_ns < src.st_mtime_ns:
            stale.add(source)
    return stale
