"""The monitor protocol, and the driver both backends share: `watchfiles.watch()`."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from pathlib import Path
from typing import ClassVar, Protocol

from watchfiles._rust_notify import RustNotify

__all__ = ["STEP_MS", "TICK_MS", "Monitor", "StopSignal", "WatchfilesMonitor"]

TICK_MS = 250
"""Milliseconds between the empty yields of a quiet monitor; the watcher uses them to notice
newly imported modules."""

STEP_MS = 50
"""Default `step_ms` of a monitor. Each step wakes the watching thread, which then takes the
GIL for a moment: in a serving process that is taken from its requests."""


class StopSignal(Protocol):
    def is_set(self) -> bool: ...


class Monitor(Protocol):
    name: str

    def watch(self, directories: Collection[Path], stop: StopSignal) -> Iterator[set[Path]]:
        """Yield an empty set once the watches are in place, then sets of changed paths in
        `directories` (each watched one level deep), and an empty set after every quiet
        `TICK_MS`. Returns once `stop` is set. Raises `FileNotFoundError` when a directory
        vanished meanwhile and another `OSError` when they cannot be watched this way."""
        ...


class WatchfilesMonitor:
    """Drives watchfiles' Rust notifier directly: unlike `watchfiles.watch()`, this tells
    when the watches are in place, so the watcher can look for what changed before."""

    name: str
    force_polling: ClassVar[bool]
    """Stat the directories' entries on a timer instead of waiting for the kernel's events."""
    poll_delay_ms: ClassVar[int] = 300
    """Milliseconds between two polls, when polling."""
    debounce_ms: ClassVar[int] = 1600
    """Longest wait, in milliseconds, while events keep coming, before a batch is yielded."""

    def __init__(self, step_ms: int = STEP_MS) -> None:
        self.step_ms = step_ms
        """Milliseconds without a new event before a batch of changes is yielded: a save is
        seen one to two steps after its last event."""

    def watch(self, directories: Collection[Path], stop: StopSignal) -> Iterator[set[Path]]:
        paths = [str(d) for d in directories]
        with RustNotify(paths, False, self.force_polling, self.poll_delay_ms, False, True) as rust:
            yield set()
            while True:
                result = rust.watch(self.debounce_ms, self.step_ms, TICK_MS, stop)
                if result == "stop":
                    return
                if isinstance(result, str):  # a timeout (or a signal: not ours to handle)
                    yield set()
                else:
                    yield {Path(path) for _change, path in result}
