"""Kernel events where they arrive, polling only for the directories where they do not (a
project on NFS or a VM's shared folder, while site-packages and the standard library stay on
a local disk)."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from .base import STEP_MS, WatchfilesMonitor
from .polling import PollingMonitor

__all__ = ["SplitMonitor"]


class SplitMonitor(WatchfilesMonitor):
    name = "native and polling"
    force_polling = False
    poll_delay_ms = PollingMonitor.poll_delay_ms

    def __init__(self, polled: Collection[Path], step_ms: int = STEP_MS) -> None:
        super().__init__(step_ms)
        self.polled = frozenset(polled)
        """The directories to poll; every other one is watched by kernel events."""

    def groups(self, directories: Collection[Path]) -> list[tuple[list[Path], bool]]:
        native = [d for d in directories if d not in self.polled]
        return [(native, False), ([d for d in directories if d in self.polled], True)]
