"""The serving processes of one server, and which of them may still hold code older than a save.

In the default mode each process sees a save through its own watcher. Its watcher is a thread
among the application's: on a busy machine it can see the save later than a peer restarts,
boots and answers with the new code, and until then it answers with the old one. So the
processes keep a register in the directory they share (see `rendezvous`): each serving process
has an entry saying up to which save it is current (when it started loading, at first). A
process withdraws its entry when it restarts; one that learns of a restart which does not
concern it (it never imported the files) moves its entry on. A process that loaded just after
a save waits, before its first answer, until no entry older than that save is left (at most
`WAIT_S`), and every process looks at the last restart's record before each request (one
`stat`): a process behind restarts then, and answers no request with its old code from then on
(`InFlight.outdate`), that one included.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from .bursts import RECORD, Restart, last_restart
from .rendezvous import replace_file, start_ticks
from .threads import allocate_lock

__all__ = ["PREFIX", "WAIT_S", "FollowRestarts", "Peers"]

logger = logging.getLogger("reloader")

PREFIX = "serving-"
"""The entries' names in the shared directory: `serving-<pid>`."""
WAIT_S = 2.0
"""The longest a fresh process waits for its peers to notice a save before its first answer:
a peer's watcher is that late only on a machine out of CPU."""
_POLL_S = 0.01


class Peers:
    """This process's view of the register in `directory`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / f"{PREFIX}{os.getpid()}"
        self._ticks = start_ticks(os.getpid()) or 0
        self._current_ns = -1

    def enter(self, current_ns: int) -> None:
        """Serve, current with every save up to `current_ns` (`time.time_ns()`); again to
        move on."""
        if current_ns <= self._current_ns:
            return
        self._current_ns = current_ns
        try:
            replace_file(self.path, f"{current_ns} {self._ticks}\n")
        except OSError as exc:
            logger.debug("cannot enter %s: %s", self.path, exc)

    def withdraw(self) -> None:
        """Leave the register: this process restarts, or ends."""
        self._current_ns = 1 << 63  # nothing enters again
        with contextlib.suppress(OSError):
            self.path.unlink()

    def behind(self, saved_ns: int) -> list[int]:
        """The other processes still serving whose code is older than `saved_ns`."""
        return [pid for pid, current in self._others() if current < saved_ns]

    def current_elsewhere(self, saved_ns: int) -> bool:
        """Whether another process serves code as new as `saved_ns`: one that may have
        answered with it already."""
        return any(current >= saved_ns for _, current in self._others())

    def _others(self) -> Iterator[tuple[int, int]]:
        """Each other serving process and the save it is current with. Entries of processes
        gone (killed before they could withdraw) are removed."""
        with contextlib.suppress(OSError), os.scandir(self.directory) as entries:
            for entry in entries:
                pid_text = entry.name.removeprefix(PREFIX)
                if entry.name == pid_text or not pid_text.isdigit():
                    continue
                pid = int(pid_text)
                if pid == os.getpid():
                    continue
                current, ticks = _read(Path(entry.path))
                if current is None:
                    continue
                if start_ticks(pid) not in (ticks, 0):
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)
                else:
                    yield pid, current

    def wait(self, saved_ns: int, timeout: float = WAIT_S) -> list[int]:
        """Wait until no other process serves code older than `saved_ns`, or `timeout`
        seconds; return those that still do."""
        deadline = time.monotonic() + timeout
        behind = self.behind(saved_ns)
        while behind and time.monotonic() < deadline:
            time.sleep(_POLL_S)
            behind = self.behind(saved_ns)
        return behind


def _read(path: Path) -> tuple[int | None, int]:
    """An entry's save and its process's start ticks; None for one being replaced."""
    try:
        current, ticks = path.read_text(encoding="ascii").split()
        return int(current), int(ticks)
    except (OSError, ValueError):
        return None, 0


class FollowRestarts:
    """The look at the last restart's record in `directory` before each request: when another
    process recorded one since, `on_restart` judges it before the request is served."""

    def __init__(self, directory: Path, on_restart: Callable[[Restart], object]) -> None:
        self.directory = directory
        self.record = directory / RECORD
        self.on_restart = on_restart
        self._seen = self._stamp()
        self._lock = allocate_lock()

    def _stamp(self) -> tuple[int, int]:
        # Every record is a new file put in place: a new inode.
        try:
            info = os.stat(self.record)
        except OSError:
            return (0, 0)
        return (info.st_ino, info.st_mtime_ns)

    def check(self) -> None:
        if self._stamp() == self._seen:
            return
        with self._lock:
            stamp = self._stamp()
            if stamp == self._seen:
                return
            # Seen only once judged: a request on another thread that finds the record seen
            # must find the verdict applied (a restart under way), not one still being made.
            try:
                restart = last_restart(self.directory)
                if restart is not None:
                    self.on_restart(restart)
            finally:
                self._seen = stamp

    def wrap(self, app: Callable[..., Any]) -> Callable[..., Any]:
        check = self.check

        def app_after_restarts(environ: Mapping[str, Any], start_response: Any) -> Any:
            check()
            return app(environ, start_response)

        return app_after_restarts
