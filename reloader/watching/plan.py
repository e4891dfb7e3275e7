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
    "GLOB_CHARS",
    "MAX_TREE_DIRECTORIES",
    "MTIME_SLACK_NS",
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

MTIME_SLACK_NS = 20_000_000
"""File times come from a coarse kernel clock that lags `time.time_ns()` by up to a tick:
this much earlier still counts as 'after we looked'."""

_SKIPPED_DIRECTORIES = frozenset({"__pycache__", "node_modules"})


GLOB_CHARS = frozenset("*?[")
"""Characters that make a path a glob."""


@dataclass(frozen=True)
class Pattern:
    """Files matching `glob` in `directory`, or at any depth below it when `recursive`.

    A `glob` without '/' is a name pattern. One with '/' ('*/settings.toml', 'a/**/b/*.py')
    is matched part by part against the path below `directory`: '*' and '?' stay within a
    part, a '**' part stands for any number of directories, none included.
    """

    directory: Path
    glob: str
    recursive: bool = False

    def matches(self, path: Path) -> bool:
        if "/" in self.glob:
            try:
                below = path.relative_to(self.directory).parts
            except ValueError:
                return False
            return _match_parts(below, tuple(self.glob.split("/")))
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
        # 'config/*/x.toml' needs the directories one level down, not the whole tree.
        parts = self.glob.split("/")
        depth = len(parts) - 1 if len(parts) > 1 and "**" not in parts else None
        top = len(self.directory.parts)
        for count, (root, dirs, _files) in enumerate(os.walk(self.directory), 1):
            dirs[:] = [d for d in dirs if d not in _SKIPPED_DIRECTORIES and not d.startswith(".")]
            if depth is not None and len(Path(root).parts) - top >= depth:
                dirs[:] = []
            yield Path(root)
            if count >= MAX_TREE_DIRECTORIES:
                return


def _match_parts(parts: tuple[str, ...], globs: tuple[str, ...]) -> bool:
    if not globs:
        return not parts
    if globs[0] == "**":
        return any(_match_parts(parts[i:], globs[1:]) for i in range(len(parts) + 1))
    return (
        bool(parts)
        and fnmatch.fnmatchcase(parts[0], globs[0])
        and _match_parts(parts[1:], globs[1:])
    )


def split_glob(directory: Path, glob: str) -> Pattern:
    """`directory` plus a glob like Django's `watch_dir()` takes ('**/*.mo', 'config/*.toml',
    'config/*/x.toml', 'src/**') as a `Pattern` rooted at the last directory before the
    first wildcard."""
    parts = [part for part in glob.split("/") if part]
    first = next(
        (i for i, part in enumerate(parts) if not GLOB_CHARS.isdisjoint(part)),
        max(len(parts) - 1, 0),
    )
    base = directory.joinpath(*parts[:first])
    rest = parts[first:] or ["*"]
    if len(rest) == 1:  # 'x/*.py' and, for any depth, 'x/**'
        return Pattern(base, rest[0], recursive=rest[0] == "**")
    if rest[0] == "**" and len(rest) == 2 and "/" not in rest[1]:  # 'x/**/*.html': by name
        return Pattern(base, rest[1], recursive=True)
    return Pattern(base, "/".join(rest), recursive=True)


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
