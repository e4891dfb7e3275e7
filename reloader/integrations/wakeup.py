"""Wakes the event streams of the packages we know, so that a stopping process's streams end
now rather than at their next chunk.

django-browser-reload's stream waits up to a second on a `threading.Event` between its pings.
At a stop the wrapper ends a stream once it yields, so until then the process lives on; under
a server that starts the replacement only once the old process is gone (gunicorn with more
than one worker, mod_wsgi, uWSGI) the fresh code waits for it too. Raising that flag has the
stream yield at once: its "reload", which its tab would do anyway, since the code changed
(under gunicorn the connection is shut down already, and the tab reconnects instead).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import ModuleType

__all__ = ["WAKERS", "wake_streams"]


def _raise_reload_flag(views: ModuleType) -> None:
    flag = getattr(views, "should_reload_event", None)
    if flag is not None and hasattr(flag, "set"):
        flag.set()


WAKERS: tuple[tuple[str, Callable[[ModuleType], None]], ...] = (
    ("django_browser_reload.views", _raise_reload_flag),
)
"""(module, how to wake its waiting streams): applied where the module is imported."""


def wake_streams() -> None:
    """At a stop, with streams open in this process."""
    for module_name, wake in WAKERS:
        module = sys.modules.get(module_name)
        if module is not None:
            wake(module)
