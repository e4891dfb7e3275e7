"""What to watch: the files a process depends on, and which of their changes count."""

from .filters import ChangeFilter
from .plan import Pattern, WatchPlan
from .sources import Sources

__all__ = ["ChangeFilter", "Pattern", "Sources", "WatchPlan"]
