"""In-place refreshes (a template or translation saved) that every process of a server applies
before it answers again.

Each process offers a changed template to Django when its own watcher sees it (or, in warm
mode, when the supervisor's signal arrives): for the tens of milliseconds between two
processes doing so, one answered with the new template and another with the old. So the first
process that sees such a change appends it to a log the whole server shares, before it applies
the change itself; every process compares the log's generation with the one it applied before
each request, and a process behind applies the lines it has not seen before it serves. Once
any process answered with the new template, none answers with the old.

The log is append-only, a line `<signature> <path>` per save (the signature, inode, size and
modification time, tells one save from the next). Its generation is its size, kept in a small
file every process maps into memory: the check before a request reads eight bytes, no system
call.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import tempfile
from collections.abc import Callable, Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

from .threads import allocate_rlock

__all__ = ["GENERATION_NAME", "LOG_NAME", "RefreshLog", "refreshable", "signature"]

LOG_NAME = "refreshes.log"
GENERATION_NAME = "refreshes.generation"
"""Their names in the directory the processes share."""
_SIZE = 8
"""Bytes of the generation: the log's size, little-endian."""
_FLAGS = os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)

Signature = str


def signature(path: Path) -> Signature | None:
    """What tells one save of `path` from another; None when it is gone."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    return f"{info.st_ino}:{info.st_size}:{info.st_mtime_ns}"


def refreshable(paths: Collection[Path], declared: Callable[[Path], bool]) -> set[Path]:
    """Of changed `paths`, those a refresh may handle: non-Python files Django apps declared
    (template and locale directories)."""
    return {p for p in paths if p.suffix != ".py" and declared(p)}


def _create(path: Path, content: bytes) -> None:
    """Make `path` with `content` at once, readable by all, unless it exists: the directory
    keeps others out, and in warm mode the supervisor (the arbiter's user) writes these files
    while workers that dropped to another user read them."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        os.write(fd, content)
        os.fchmod(fd, 0o644)  # whatever the umask
        with contextlib.suppress(FileExistsError):
            os.link(temp, path)
    finally:
        os.close(fd)
        os.unlink(temp)


def _open(path: Path, content: bytes) -> tuple[int, bool]:
    """The descriptor of `path` (made with `content` if missing), and whether this process
    may write it."""
    if not path.exists():
        _create(path, content)
    try:
        return os.open(path, _FLAGS | os.O_RDWR), True
    except PermissionError:
        return os.open(path, _FLAGS | os.O_RDONLY), False


class RefreshLog:
    """One process's view of the log in `directory`."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / LOG_NAME
        self._fd, self.writable = _open(self.path, b"")
        generation_fd, writable = _open(directory / GENERATION_NAME, bytes(_SIZE))
        self.writable = self.writable and writable
        self._generation_fd = generation_fd
        self._generation = mmap.mmap(generation_fd, _SIZE, access=mmap.ACCESS_READ)
        self._published: dict[str, Signature] = {}
        self._lock = allocate_rlock()
        self._apply: Callable[[set[Path]], object] = lambda _paths: None
        self.applied = 0
        """How far this process applied the log, in bytes."""
        # A process that starts loads every template afresh: it begins caught up.
        self._seen = self._generation[:_SIZE]
        _, self.applied = self._read_new()

    def follow(self, apply: Callable[[set[Path]], object]) -> None:
        """Have `apply` called with the paths of new lines, before a request is served."""
        self._apply = apply

    def behind(self) -> bool:
        """The check before each request: another process published since we caught up."""
        return self._generation[:_SIZE] != self._seen

    def catch_up(self) -> None:
        """Apply the lines this process has not applied yet. Threads that find the process
        behind wait for the one applying, which marks the generation seen only once it is
        done: none serves before the refresh. Reentrant: in warm mode the supervisor's signal
        may arrive while a request of a sync worker catches up."""
        with self._lock:
            generation = self._generation[:_SIZE]  # before the lines: none is missed
            paths, end = self._read_new()
            if paths:
                self._apply(paths)
            self.applied = max(self.applied, end)
            self._seen = generation

    def publish(self, paths: Iterable[Path]) -> None:
        """Append the saves of `paths` not in the log yet: the other processes apply them
        before their next request. Call it before applying them here."""
        if not self.writable:
            return
        with self._lock:
            fcntl.flock(self._fd, fcntl.LOCK_EX)  # the generation only grows
            try:
                self._read_new()  # what others published: not to be published twice
                lines = []
                for path in paths:
                    sig = signature(path)
                    name = os.fsdecode(path)
                    if sig is not None and "\n" not in name and self._published.get(name) != sig:
                        self._published[name] = sig
                        lines.append(f"{sig} {name}\n")
                if lines:
                    size = os.fstat(self._fd).st_size
                    data = os.fsencode("".join(lines))
                    os.pwrite(self._fd, data, size)
                    os.pwrite(self._generation_fd, (size + len(data)).to_bytes(_SIZE, "little"), 0)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _read_new(self) -> tuple[set[Path], int]:
        """The paths of the whole lines past `applied`, and the offset after them."""
        size = os.fstat(self._fd).st_size
        applied = self.applied
        if size <= applied:
            return set(), applied
        data = os.pread(self._fd, size - applied, applied)
        whole = data.rfind(b"\n") + 1
        paths = set()
        for line in data[:whole].splitlines():
            sig, _, name = os.fsdecode(line).partition(" ")
            if name:
                self._published[name] = sig
                paths.add(Path(name))
        return paths, applied + whole

    def wrap(self, app: Callable[..., Any]) -> Callable[..., Any]:
        """`app`, caught up with the log before each request."""
        behind, catch_up = self.behind, self.catch_up

        def refreshed_app(environ: Mapping[str, Any], start_response: Any) -> Any:
            if behind():
                catch_up()
            return app(environ, start_response)

        return refreshed_app

    def close(self) -> None:
        self._generation.close()
        for fd in (self._fd, self._generation_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
