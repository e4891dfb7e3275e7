"""The monitor protocol, and the driver both backends share: `watchfiles.watch()`."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import ClassVar, Protocol

from watchfiles._rust_notify import RustNotify

from .same_second import SameSecond

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

    def groups(self, directories: Collection[Path]) -> list[tuple[list[Path], bool]]:
        """The directories to give each notifier, and whether it polls them."""
        return [(list(directories), self.force_polling)]

    def watch(self, directories: Collection[Path], stop: StopSignal) -> Iterator[set[Path]]:
        groups = [group for group in self.groups(directories) if group[0]]
        groups = groups or [([], self.force_polling)]
        # Each notifier collects its events in threads of its own; with several, each is
        # asked in turn for at most one step, so none holds up another's events.
        timeout_ms = TICK_MS if len(groups) == 1 else self.step_ms
        with contextlib.ExitStack() as stack:
            notifiers: list[tuple[RustNotify, SameSecond | None]] = []
            for dirs, polling in groups:
                rust = RustNotify(
                    [str(d) for d in dirs], False, polling, self.poll_delay_ms, False, True
                )
                stack.enter_context(rust)
                # The poller has taken its first look: what it saw in this second is noted.
                notifiers.append((rust, SameSecond(dirs) if polling else None))
            yield set()
            quiet_since = time.monotonic()
            while True:
                batch: set[Path] = set()
                for rust, same in notifiers:
                    result = rust.watch(self.debounce_ms, self.step_ms, timeout_ms, stop)
                    if result == "stop":
                        return
                    if not isinstance(result, str):  # else a timeout (or a signal: not ours)
                        paths = {Path(path) for _change, path in result}
                        batch |= paths
                        if same:
                            same.note(paths)
                    if same:
                        batch |= same.changed()
                if batch or time.monotonic() - quiet_since >= TICK_MS / 1000:
                    quiet_since = time.monotonic()
                    yield batch
