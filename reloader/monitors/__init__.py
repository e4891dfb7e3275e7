"""How to watch: monitors report changed paths in a set of directories, one level deep.

The watcher knows only the `Monitor` protocol and `choose_monitor()`; each backend lives in a
file of its own.
"""

from .base import STEP_MS, Monitor
from .choice import choose_monitor
from .native import NativeMonitor
from .polling import PollingMonitor
from .split import SplitMonitor

__all__ = [
    "STEP_MS",
    "Monitor",
    "NativeMonitor",
    "PollingMonitor",
    "SplitMonitor",
    "choose_monitor",
]
