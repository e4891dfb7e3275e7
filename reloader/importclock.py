"""When each module of a loading application was imported, and a point to pause its import.

A file saved while a process loads makes it stale only if the save came after the process
read that file: a view module saved while Django itself was still importing is read in its
new version. So the process notes when each module was first looked for (its source is read
right after); a module it imported before a save is stale, one it imported after is not.
The same place lets a burst of saves hold the import until it settles (see `bursts`). Python
calls a finder with its import lock held: another thread of the process that imports during
such a pause waits with it (at most `bursts.MAX_WAIT_S`); nothing serves requests yet.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Sequence
from types import ModuleType, TracebackType
from typing import Any

__all__ = ["CHECK_S", "ImportClock"]

CHECK_S = 0.05
"""Seconds between two looks for a burst while the application imports."""


class ImportClock:
    """A finder first on `sys.meta_path` while the application loads, that finds nothing."""

    def __init__(self, pause: Callable[[], None] | None = None) -> None:
        self.times: dict[str, int] = {}
        """Each module name first looked for, with `time.time_ns()` then."""
        self._pause = pause
        self._next = 0.0
        self._thread = 0

    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> None:
        pause = self._pause
        if pause is not None and time.monotonic() >= self._next and self._in_loader():
            pause()
            self._next = time.monotonic() + CHECK_S
        self.times.setdefault(name, time.time_ns())

    def _in_loader(self) -> bool:
        return threading.get_ident() == self._thread

    def __enter__(self) -> ImportClock:
        self._thread = threading.get_ident()
        sys.meta_path.insert(0, self)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self in sys.meta_path:
            sys.meta_path.remove(self)

    def __repr__(self) -> str:
        return f"<ImportClock {len(self.times)} modules>"

    @staticmethod
    def invalidate_caches(*_args: Any) -> None:
        """Part of the finder protocol: nothing cached here."""
