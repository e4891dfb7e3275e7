"""What a fork hands down: the threads and open file descriptors of the arbiter.

The arbiter must hold none of its own making when it forks a worker, so every import done
there is checked against a footprint taken before it.
"""

from __future__ import annotations

import _thread
import contextlib
import os
from collections.abc import Collection

__all__ = ["Footprint"]


def _open_fds() -> set[int]:
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return set()
    fds = set()
    for name in names:
        # The listing's own descriptor is closed by now: it fails here and is left out.
        with contextlib.suppress(OSError):
            os.readlink(f"/proc/self/fd/{name}")
            fds.add(int(name))
    return fds


class Footprint:
    """Threads and descriptors at the moment of creation; `grown()` tells what was added."""

    def __init__(self) -> None:
        self.threads = _thread._count()
        self.fds = _open_fds()

    def grown(self, allowed_fds: Collection[int] = ()) -> str | None:
        """What was added since, as a phrase ('starts a thread'), or None. `allowed_fds` are
        descriptors known to be harmless to share (a log file opened for appending)."""
        if _thread._count() > self.threads:
            return "starts a thread"
        if _open_fds() - self.fds - set(allowed_fds):
            return "opens a file descriptor"
        return None
