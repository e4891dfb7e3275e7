"""Where the files to watch come from: imported modules, a failed load, the user, Django.

`Sources` gathers them into a `WatchPlan`. The watcher thread calls `plan()` again whenever
the process may have grown (more modules imported, Django apps declaring directories), so a
module first imported inside a view is watched from then on.
"""

from __future__ import annotations

import functools
import os
import site
import sys
import sysconfig
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import ModuleType

from ..threads import allocate_lock
from .plan import GLOB_CHARS, MTIME_SLACK_NS, Pattern, WatchPlan, change_ns, split_glob

__all__ = ["Sources", "is_third_party", "module_file", "third_party_roots"]

LOADING_RESCAN_SECONDS = 2.0
"""While the application imports, how often the plan follows the new modules (so that a
module whose import hangs is watched, and a fix to it restarts the process)."""


def module_file(module: ModuleType) -> Path | None:
    """The file a module was loaded from, if it came from a real file."""
    spec = getattr(module, "__spec__", None)
    origin = getattr(spec, "origin", None) if spec is not None else None
    if not (spec is not None and getattr(spec, "has_location", False) and origin):
        origin = getattr(module, "__file__", None)
    if not isinstance(origin, str) or origin.endswith((".pyc", ".pyo")):
        return None
    return Path(origin)


@functools.cache
def third_party_roots() -> tuple[Path, ...]:
    """Directories holding the standard library and installed packages: code the user does not
    edit by hand, where only the exact imported files are watched."""
    roots: set[str] = set()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            roots.add(path)
    roots.update(getattr(site, "getsitepackages", list)())
    user_site = getattr(site, "getusersitepackages", lambda: None)()
    if isinstance(user_site, str):
        roots.add(user_site)
    # Both spellings: module paths come unresolved from sys.path, but a venv may be a symlink.
    return tuple({p for r in roots for p in (Path(r).absolute(), Path(r).resolve())})


@functools.cache
def _third_party_prefixes() -> tuple[str, ...]:
    return tuple(os.path.join(str(root), "") for root in third_party_roots())


def is_third_party(path: Path) -> bool:
    """Whether `path` lies in the standard library or installed packages. Called for every
    module on every plan: a string test, not `Path.parents`."""
    return os.path.join(str(path), "").startswith(_third_party_prefixes())


def project_directories(files: Iterable[Path | str]) -> frozenset[Path]:
    """The directories of those of `files` (absolute) that are not third-party. Done on
    strings: the warm supervisor asks it of every worker's 1,700 files at each restart, on
    the path from the save to the fresh worker."""
    prefixes = _third_party_prefixes()
    names = {str(f) for f in files}
    found = {os.path.dirname(n) for n in names if not os.path.join(n, "").startswith(prefixes)}
    return frozenset(map(Path, found))


class Sources:
    """Collects what one process must watch.

    - every file of `sys.modules`;
    - files named by a failed load (each traceback file, a `SyntaxError`'s file);
    - the user's extra files and globs;
    - patterns declared later (Django's `watch_dir()`, `extra_files`);
    - any `*.py` in a directory of the project's own modules, so that a deleted module coming
      back, or a module that never imported because it was broken, is noticed.
    """

    def __init__(self, extra: Iterable[str] = (), cwd: Path | None = None) -> None:
        self.cwd = (cwd or Path.cwd()).absolute()
        self._lock = allocate_lock()
        # Computed here, in the serving thread: sysconfig takes a lock that, under gevent, a
        # real watcher thread must not hold while a greenlet waits for it.
        _third_party_prefixes()
        self._files: set[Path] = set()
        self._patterns: set[Pattern] = set()
        self._module_count = -1
        self._module_files: frozenset[Path] = frozenset()
        self._read_ns: dict[Path, int] = {}
        self.import_times: Mapping[str, int] = {}
        """When each module was first looked for while the application loaded (see
        `importclock`), by name: its file was read then."""
        self._scanned_at = 0.0
        self.loading = False
        """Set while the application is being imported."""
        self.generation = 0
        """Bumped by every `add_*` so the watcher knows to rebuild its plan."""
        for entry in extra:
            self._add_user_entry(entry)

    def _add_user_entry(self, entry: str) -> None:
        path = Path(entry).expanduser()
        if not path.is_absolute():
            path = self.cwd / path
        if GLOB_CHARS.isdisjoint(entry):
            self.add_files([path])
            return
        # `split_glob` watches from the last directory before the first wildcard.
        self.add_pattern(Path(path.anchor), path.relative_to(path.anchor).as_posix())

    def declared(self) -> tuple[frozenset[Path], frozenset[Pattern]]:
        """The files and patterns added explicitly (the user's extra files...), without the
        modules: what the warm arbiter holds when its settings read them."""
        with self._lock:
            return frozenset(self._files), frozenset(self._patterns)

    def add_files(self, files: Iterable[Path]) -> None:
        with self._lock:
            self._files.update(Path(f).absolute() for f in files)
            self.generation += 1

    def add_pattern(self, directory: Path, glob: str) -> None:
        directory = Path(directory)
        if not directory.is_absolute():
            directory = self.cwd / directory
        with self._lock:
            self._patterns.add(split_glob(directory.absolute(), glob))
            self.generation += 1

    def add_failure(self, exc: BaseException) -> None:
        """Watch the files involved in a failed load, and any `*.py` beside them."""
        files = failure_files(exc)
        self.add_files(files)
        for directory in {f.parent for f in files if not is_third_party(f)}:
            self.add_pattern(directory, "*.py")

    def modules_changed(self) -> bool:
        """Cheap check, for every tick: were modules imported since the last plan? While the
        application is loading, say so at most every `LOADING_RESCAN_SECONDS`: planning takes
        the GIL from the import, and edits made meanwhile are caught up after it anyway."""
        if len(sys.modules) == self._module_count:
            return False
        return not self.loading or time.monotonic() - self._scanned_at >= LOADING_RESCAN_SECONDS

    def changes(self) -> dict[Path, int]:
        """When each file of the plan last changed (`change_ns`)."""
        return {path: change_ns(path) for path in self.plan().files}

    def read_ns(self, path: Path) -> int:
        """When the module of `path` was imported, less the file clock's slack; 0 when not
        known (a file that is no module, one imported before the application loaded)."""
        read = self._read_ns.get(path, 0)
        return read - MTIME_SLACK_NS if read else 0

    def saved_since_read(self, changes: Mapping[Path, int], started_ns: int) -> set[Path]:
        """Of files and their `change_ns`, those saved after this process read them: after
        its module was imported, or for any other file after `started_ns`. A file dated in
        the future is left out: it would count as saved after every start."""
        now = time.time_ns()
        return {
            path
            for path, changed in changes.items()
            if max(started_ns, self.read_ns(path)) < changed <= now
        }

    def project_directories(self) -> frozenset[Path]:
        """The directories of the project's own modules (not the standard library's or
        installed packages')."""
        return project_directories(self._scan_modules())

    def plan(self) -> WatchPlan:
        module_files = self._scan_modules()
        project_dirs = project_directories(module_files)
        with self._lock:
            files = frozenset(module_files | self._files)
            patterns = set(self._patterns)
        patterns.update(Pattern(d, "*.py") for d in project_dirs)
        return WatchPlan(files, frozenset(patterns))

    def _scan_modules(self) -> frozenset[Path]:
        count = len(sys.modules)
        if count != self._module_count:
            found = set()
            times = self.import_times
            for name, module in list(sys.modules.items()):
                path = module_file(module) if module is not None else None
                if path is not None:
                    path = path if path.is_absolute() else self.cwd / path
                    found.add(path)
                    if name in times:
                        self._read_ns[path] = times[name]
            self._module_files = frozenset(found)
            self._module_count = count
            self._scanned_at = time.monotonic()
        return self._module_files


def failure_files(exc: BaseException) -> set[Path]:
    """Every file in the traceback of `exc` and of the exceptions chained to it, plus the file
    a `SyntaxError` points at (it is not in the traceback)."""
    files: set[Path] = set()
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, SyntaxError) and current.filename:
            files.add(Path(current.filename))
        tb = current.__traceback__
        while tb is not None:
            filename = tb.tb_frame.f_code.co_filename
            if not filename.startswith("<"):
                files.add(Path(filename))
            tb = tb.tb_next
        current = current.__cause__ or current.__context__
    return {f.absolute() for f in files}
