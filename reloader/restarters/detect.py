"""Pick the restart strategy for the server this process runs in."""

from __future__ import annotations

from .base import Restarter
from .exec import ExecRestarter
from .gunicorn import GunicornRestarter, in_gunicorn_worker
from .mod_wsgi import ModWsgiRestarter, mod_wsgi_mode

__all__ = ["detect_restarter"]


def detect_restarter() -> Restarter:
    """The strategy for this process. Call it where the app is served (a gunicorn worker, a
    mod_wsgi daemon process), not in a parent that forks them."""
    if mod_wsgi_mode() == "daemon":
        return ModWsgiRestarter()
    if in_gunicorn_worker():
        return GunicornRestarter()
    return ExecRestarter()
