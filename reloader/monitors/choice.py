"""Which monitor a process uses."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from .base import STEP_MS, Monitor
from .native import NativeMonitor, unreliable_filesystem
from .polling import PollingMonitor

__all__ = ["choose_monitor"]


def choose_monitor(
    force_polling: bool, directories: Collection[Path], step_ms: int = STEP_MS
) -> tuple[Monitor, str | None]:
    """The monitor to start with, and why it polls when polling was not asked for (for the one
    warning line)."""
    if force_polling:
        return PollingMonitor(step_ms), None
    reason = unreliable_filesystem(directories)
    if reason is not None:
        return PollingMonitor(step_ms), reason
    return NativeMonitor(step_ms), None
