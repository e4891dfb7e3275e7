"""The monitor protocol, and the driver both backends share: `watchfiles.watch()`."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from pathlib import Path
from typing import ClassVar, Protocol

import watchfiles

__all__ = ["TICK_MS", "Monitor", "StopSignal", "WatchfilesMonitor"]

TICK_MS = 250
"""Milliseconds between the empty yields of a quiet monitor; the watcher uses them to notice
newly imported modules."""


class StopSignal(Protocol):
    def is_set(self) -> bool: ...


class Monitor(Protocol):
    name: str

    def watch(self, directories: Collection[Path], stop: StopSignal) -> Iterator[set[Path]]:
        """Yield sets of changed paths in `directories` (each watched one level deep), and an
        empty set after every quiet `TICK_MS`. Returns once `stop` is set. Raises `OSError`
        when the directories cannot be watched this way."""
        ...


class WatchfilesMonitor:
    """Runs `watchfiles.watch()` without its filter: the watcher filters by its own plan."""

    name: str
    force_polling: ClassVar[bool]
    """Stat the directories' entries on a timer instead of waiting for the kernel's events."""
    poll_delay_ms: ClassVar[int] = 300
    """Milliseconds between two polls, when polling."""
    step_ms: ClassVar[int] = 50
    """Milliseconds without a new event before a batch of changes is yielded."""
    debounce_ms: ClassVar[int] = 1600
    """Longest wait, in milliseconds, while events keep coming, before a batch is yielded."""

    def watch(self, directories: Collection[Path], stop: StopSignal) -> Iterator[set[Path]]:
        batches = watchfiles.watch(
            *directories,
            watch_filter=None,
            debounce=self.debounce_ms,
            step=self.step_ms,
            stop_event=stop,
            rust_timeout=TICK_MS,
            yield_on_timeout=True,
            raise_interrupt=False,
            force_polling=self.force_polling,
            poll_delay_ms=self.poll_delay_ms,
            recursive=False,
            ignore_permission_denied=True,
        )
        try:
            for batch in batches:
                yield {Path(path) for _change, path in batch}
        finally:
            # Closes the inotify instance now, not when the generator is collected.
            batches.close()
