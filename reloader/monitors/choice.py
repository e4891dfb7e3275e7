"""Which monitor a process uses."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from .base import STEP_MS, Monitor
from .native import NativeMonitor, unreliable_directories
from .polling import PollingMonitor
from .split import SplitMonitor

__all__ = ["choose_monitor"]


def choose_monitor(
    force_polling: bool,
    directories: Collection[Path],
    step_ms: int = STEP_MS,
    mounts: str = "/proc/mounts",
) -> tuple[Monitor, str | None]:
    """The monitor to start with, and why it polls when polling was not asked for (for the one
    warning line). Only directories on file systems without reliable events are polled."""
    if force_polling:
        return PollingMonitor(step_ms), None
    polled = unreliable_directories(directories, mounts)
    if not polled:
        return NativeMonitor(step_ms), None
    first = min(polled)
    reason = f"{first} is on {polled[first]}"
    if len(polled) == len(directories):
        return PollingMonitor(step_ms), reason
    others = f" and {len(polled) - 1} more directories" if len(polled) > 1 else ""
    return SplitMonitor(polled, step_ms), f"{reason}{others}; the rest by kernel events"
