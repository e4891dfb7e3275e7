"""Polling through watchfiles: works on any file system, costs a stat of every entry of every
watched directory per poll."""

from __future__ import annotations

from .base import WatchfilesMonitor

__all__ = ["PollingMonitor"]


class PollingMonitor(WatchfilesMonitor):
    name = "polling"
    force_polling = True
    poll_delay_ms = 500
