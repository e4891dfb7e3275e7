"""Flags a `file_changed` receiver raises for an event stream of this process to pass on.

django-browser-reload's receiver raises `should_reload_event` when a template changes (50 ms
later, from a timer: its debounce); the event stream open in this process then tells its tab
"reload" and lowers the flag. Under a server with several processes each of them is told of
the save, but a tab's one stream lives in one of them: in the others the flag stays raised,
and the next stream to open there reloads its tab once more for a save it already shows (the
same tab, right after the reload it was told to do, since its stream reconnects with the new
page; or any tab, minutes later). A flag raised in a process with no stream open is for no
one: it is lowered.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import ModuleType

__all__ = ["UNHEARD", "forget_unheard_flags"]


def _lower_reload_flag(views: ModuleType) -> None:
    timer = getattr(views, "reload_timer", None)
    if timer is not None and hasattr(timer, "cancel"):
        timer.cancel()  # still waiting out the debounce: it would raise the flag after us
    flag = getattr(views, "should_reload_event", None)
    if flag is not None and hasattr(flag, "clear"):
        flag.clear()


UNHEARD: tuple[tuple[str, Callable[[ModuleType], None]], ...] = (
    ("django_browser_reload.views", _lower_reload_flag),
)
"""(module, how to lower what it raised for a stream): applied where the module is imported."""


def forget_unheard_flags() -> None:
    """After a refresh in a process that has no event stream open."""
    for module_name, lower in UNHEARD:
        module = sys.modules.get(module_name)
        if module is not None:
            lower(module)
