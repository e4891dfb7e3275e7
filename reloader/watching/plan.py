"""A snapshot of what one process watches: exact files plus directory patterns.

The watcher turns a plan into the directories to hand to a monitor (watched one level deep
each, since a watch on a single file dies at the first atomic save) and asks the plan whether a
reported path matters.
"""

from __future__ import annotations

import fnmatch
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "MAX_TREE_DIRECTORIES",
    "Pattern",
    "WatchPlan",
    "change_ns",
    "mtime_ns",
    "saved_after",
    "split_glob",
]

MAX_TREE_DIRECTORIES = 2000
"""How many directories one recursive pattern may add, so a stray '**' on a home directory
cannot eat the inotify budget."""

_SKIPPED_DIRECTORIES = frozenset({"__pycache__", "node_modules"})


@dataclass(frozen=True)
class Pattern:
    """Files matching `glob` (a name pattern) in `directory`, or at any depth below it."""

    directory: Path
    glob: str
    recursive: bool = False

    def matches(self, path: Path) -> bool:
        if not fnmatch.fnmatchcase(path.name, self.glob):
            return False
        if self.recursive:
            return self.directory in path.parents
        return path.parent == self.directory

    def directories(self) -> Iterator[Path]:
        """The existing directories to watch for this pattern."""
        if not self.directory.is_dir():
            return
        if not self.recursive:
            yield self.directory
            return
        for count, (root, dirs, _files) in enumerate(os.walk(self.directory), 1):
            dirs[:] = [d for d in dirs if d not in _SKIPPED_DIRECTORIES and not d.startswith(".")]
            yield Path(root)
            if count >= MAX_TREE_DIRECTORIES:
                return


def split_glob(directory: Path, glob: str) -> Pattern:
    """`directory` plus a glob like Django's `watch_dir()` takes ('**/*.mo', 'config/*.toml')
    as a `Pattern`; a '**' anywhere makes it recursive from the part before it."""
    head, _, name = glob.rpartition("/")
    if "**" in head:
        base = head.split("**", 1)[0].rstrip("/")
        return Pattern((directory / base) if base else directory, name or "*", recursive=True)
    return Pattern((directory / head) if head else directory, name or "*")


@dataclass(frozen=True)
class WatchPlan:
    """Exact files and patterns; immutable so the watcher thread can share it safely."""

    files: frozenset[Path] = frozenset()
    patterns: frozenset[Pattern] = field(default_factory=frozenset)

    def matches(self, path: Path) -> bool:
        return path in self.files or any(p.matches(path) for p in self.patterns)

    def directories(self) -> frozenset[Path]:
        dirs = {d for d in {f.parent for f in self.files} if d.is_dir()}
        for pattern in self.patterns:
            dirs.update(pattern.directories())
        return frozenset(dirs)

    def existing_files(self) -> Iterator[Path]:
        """The exact files, and the files the patterns match now."""
        yield from self.files
        for pattern in self.patterns:
            for directory in pattern.directories():
                try:
                    with os.scandir(directory) as entries:
                        names = [e.name for e in entries if e.is_file()]
                except OSError:
                    continue  # removed since we listed it
                for name in fnmatch.filter(names, pattern.glob):
                    yield directory / name

    def missing_directories(self) -> frozenset[Path]:
        """Directories the plan would watch once they exist (a template directory not made
        yet, the folder of an extra file)."""
        wanted = {f.parent for f in self.files} | {p.directory for p in self.patterns}
        return frozenset(d for d in wanted if not d.is_dir())


def mtime_ns(path: Path) -> int:
    """The file's modification time in nanoseconds; 0 when it is gone."""
    try:
        return os.stat(path).st_mtime_ns
    except (OSError, ValueError):
        return 0


def change_ns(path: Path) -> int:
    """When the file last changed in any way, in nanoseconds; 0 when it is gone. The later of
    its modification time and its status change time: `cp -p`, `rsync -a`, `git checkout` of
    an older file or a skewed clock date the content in the past, but the kernel stamps the
    status change with its own clock when the file is written or re-dated."""
    try:
        stat = os.stat(path)
    except (OSError, ValueError):  # ValueError: a name no file can have (a NUL in it)
        return 0
    return max(stat.st_mtime_ns, stat.st_ctime_ns)


def saved_after(mtimes: Mapping[Path, int], after_ns: int) -> set[Path]:
    """Of files and their `change_ns`, those saved after `after_ns` (`time.time_ns()`). A file
    dated in the future is left out: it would count as saved after every start."""
    now = time.time_ns()
    return {path for path, mtime in mtimes.items() if after_ns < mtime <= now}
