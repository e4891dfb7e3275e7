"""In-place refreshes (a template or translation saved) that every process of a server applies
before it answers again.

Each process offers a changed template to Django when its own watcher sees it (or, in warm
mode, when the supervisor's signal arrives): for the tens of milliseconds between two
processes doing so, one answered with the new template and another with the old. So the first
process that sees such a change appends it to a log the whole server shares, before it applies
the change itself, and every process looks at the log's size before each request: one
`fstat()`. A process behind the log applies the lines it has not seen before it serves the
request, so once any process answered with the new template, none answers with the old.

The log is append-only: its size is its generation. A line is `<signature> <path>`, the
signature (inode, size, modification time) telling one save from the next.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

from .threads import allocate_rlock

__all__ = ["LOG_NAME", "RefreshLog", "signature"]

logger = logging.getLogger("reloader")

LOG_NAME = "refreshes.log"
"""Its name in the directory the processes share."""

Signature = str


def signature(path: Path) -> Signature | None:
    """What tells one save of `path` from another; None when it is gone."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    return f"{info.st_ino}:{info.st_size}:{info.st_mtime_ns}"


def _open(path: Path) -> tuple[int, bool]:
    """The log's descriptor, and whether this process may append to it. Made readable by
    all: the directory keeps others out, and in warm mode the supervisor (the arbiter's
    user) writes it while workers that dropped to another user read it."""
    flags = os.O_APPEND | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags | os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        pass
    else:
        os.fchmod(fd, 0o644)  # whatever the umask
        return fd, True
    try:
        return os.open(path, flags | os.O_RDWR), True
    except PermissionError:
        return os.open(path, flags & ~os.O_APPEND | os.O_RDONLY), False


class RefreshLog:
    """One process's view of the log in `directory`."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / LOG_NAME
        self._fd, self.writable = _open(self.path)
        self._published: dict[str, Signature] = {}
        self._lock = allocate_rlock()
        self._apply: Callable[[set[Path]], object] = lambda _paths: None
        self.applied = 0
        """How far this process applied the log, in bytes: all there is when it starts, since
        a process that starts loads every template afresh anyway."""
        _, self.applied = self._read_new()

    def follow(self, apply: Callable[[set[Path]], object]) -> None:
        """Have `apply` called with the paths of new lines, before a request is served."""
        self._apply = apply

    def behind(self) -> bool:
        """The check before each request."""
        return os.fstat(self._fd).st_size > self.applied

    def catch_up(self) -> None:
        """Apply the lines this process has not applied yet. Threads that find the process
        behind wait for the one applying, and `applied` moves only once it is done: none
        serves before the refresh. Reentrant: in warm mode the supervisor's signal may arrive
        while a request of a sync worker catches up."""
        with self._lock:
            paths, end = self._read_new()
            if paths:
                self._apply(paths)
            self.applied = max(self.applied, end)

    def publish(self, paths: Iterable[Path]) -> None:
        """Append the saves of `paths` not in the log yet: the other processes apply them
        before their next request. Call it before applying them here."""
        with self._lock:
            self._read_new()  # what others published: not to be published twice
            lines = []
            for path in paths:
                sig = signature(path)
                name = os.fsdecode(path)
                if sig is not None and "\n" not in name and self._published.get(name) != sig:
                    self._published[name] = sig
                    lines.append(f"{sig} {name}\n")
            if lines and self.writable:
                os.write(self._fd, os.fsencode("".join(lines)))

    def _read_new(self) -> tuple[set[Path], int]:
        """The paths of the whole lines past `applied`, and the offset after them."""
        size = os.fstat(self._fd).st_size
        if size <= self.applied:
            return set(), self.applied
        data = os.pread(self._fd, size - self.applied, self.applied)
        whole = data.rfind(b"\n") + 1
        paths = set()
        for line in data[:whole].splitlines():
            sig, _, name = os.fsdecode(line).partition(" ")
            if name:
                self._published[name] = sig
                paths.add(Path(name))
        return paths, self.applied + whole

    def wrap(self, app: Callable[..., Any]) -> Callable[..., Any]:
        """`app`, caught up with the log before each request."""
        behind, catch_up = self.behind, self.catch_up

        def refreshed_app(environ: Mapping[str, Any], start_response: Any) -> Any:
            if behind():
                catch_up()
            return app(environ, start_response)

        return refreshed_app

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)


def refreshable(paths: Collection[Path], declared: Callable[[Path], bool]) -> set[Path]:
    """Of changed `paths`, those a refresh may handle: non-Python files Django apps declared
    (template and locale directories)."""
    return {p for p in paths if p.suffix != ".py" and declared(p)}
