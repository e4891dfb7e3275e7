"""What polling misses: notify's poll watcher keeps each file's modification time in whole
seconds, so a save within the second of the one it last saw (a save, then a formatter's
rewrite; a checkout of many files) looks like no change at all (watchfiles issue #319).

A `SameSecond` looks again, at full resolution, at the entries of the polled directories
whose time falls in the current second, until that second has passed: any later save bears
a later second, which the poll watcher does see.
"""

from __future__ import annotations

import os
import time
from collections.abc import Collection, Iterable
from pathlib import Path

from ..watching.plan import MTIME_SLACK_NS

__all__ = ["SameSecond"]

SECOND_NS = 1_000_000_000


def _mtime_ns(path: Path) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def _second(ns: int) -> int:
    return ns // SECOND_NS


class SameSecond:
    """Files of polled directories saved in the current second, and the time each bore when
    last looked at (nanoseconds since the epoch)."""

    def __init__(self, directories: Collection[Path]) -> None:
        """For a poll watcher that just took its first look at `directories`: their entries
        saved in this second are noted, since a second save now would escape it."""
        self.pending: dict[Path, int] = {}
        now = _second(time.time_ns() - MTIME_SLACK_NS)
        for directory in directories:
            try:
                with os.scandir(directory) as entries:
                    for entry in entries:
                        try:
                            mtime = entry.stat(follow_symlinks=False).st_mtime_ns
                        except OSError:
                            continue
                        if _second(mtime) >= now:
                            self.pending[Path(entry.path)] = mtime
            except OSError:
                continue  # gone: the watcher plans again

    def note(self, paths: Iterable[Path]) -> None:
        """Note paths the poll watcher just reported: it now knows them by this second."""
        for path in paths:
            mtime = _mtime_ns(path)
            if mtime is not None:
                self.pending[path] = mtime

    def changed(self) -> set[Path]:
        """Pending files saved again within the second they bore when last looked at. A save
        in a later second is left to the poll watcher, which reports it; a file is dropped
        once a look finds it unchanged after its second has passed."""
        found: set[Path] = set()
        now = _second(time.time_ns() - MTIME_SLACK_NS)
        for path, seen in list(self.pending.items()):
            mtime = _mtime_ns(path)
            if mtime is None:
                del self.pending[path]  # a removal: the poll watcher reports it
            elif mtime != seen:
                if _second(mtime) == _second(seen):
                    found.add(path)
                self.pending[path] = mtime
            elif _second(seen) < now:
                del self.pending[path]
        return found
