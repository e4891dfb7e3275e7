"""Pick the restart strategy for the server this process runs in, and where to load the
application: here, in each worker after the server forks it, or not at all."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from . import uwsgi
from .base import Restarter
from .exec import ExecRestarter, forked_by_unknown_server
from .gunicorn import GunicornRestarter, gunicorn_preloading, in_gunicorn_worker
from .mod_wsgi import ModWsgiRestarter, mod_wsgi_mode

__all__ = ["Placement", "detect_restarter", "placement"]

SUPPORTED = "gunicorn, Apache/mod_wsgi in daemon mode, uWSGI, or a single-process server"

Register = Callable[[Callable[[], None]], None]
"""Arranges for a callback to run in each worker right after the server forks it."""


@dataclass(frozen=True)
class Placement:
    """Where `wrap()` loads the application in this process."""

    refusal: str | None = None
    """Why this process cannot reload (a warning with %s for the target): serve as is."""
    after_fork: Register | None = None
    """Set in a parent that forks the workers: load in each of them instead."""
    note: str = ""
    """The log line (with %s for the target) that says the load is deferred."""
    before_boot: Callable[[], None] | None = None
    """Runs in the serving process right before it loads the application."""


def _at_os_fork(boot: Callable[[], None]) -> None:
    os.register_at_fork(after_in_child=boot)


def placement() -> Placement:
    if mod_wsgi_mode() == "embedded":
        return Placement(
            refusal="mod_wsgi runs %s in embedded mode, where nothing can restart it: not "
            "reloading. Use daemon mode: WSGIDaemonProcess NAME processes=2 threads=4 and "
            "WSGIProcessGroup NAME (with WSGIApplicationGroup %%{GLOBAL})."
        )
    if gunicorn_preloading():
        return Placement(
            after_fork=_at_os_fork,
            note="--preload: %s is loaded in each worker, not in the arbiter",
        )
    module = uwsgi.uwsgi_module()
    if module is not None:
        if not module.masterpid():
            return Placement(
                refusal="uWSGI runs %s without its master, so a worker that stops is never "
                "replaced: not reloading. Add --master (master = true in an ini file)."
            )
        if not getattr(module, "has_threads", True):
            return Placement(
                refusal="uWSGI runs no Python threads here, so nothing can watch %s: not "
                "reloading. Add --enable-threads (enable-threads = true in an ini file)."
            )
        if module.worker_id() == 0:
            return Placement(
                after_fork=uwsgi.after_fork,
                note="uWSGI: %s is loaded in each worker, not in the master (as with --lazy-apps)",
            )
        return Placement(before_boot=uwsgi.guard_the_worker)
    if in_gunicorn_worker() or mod_wsgi_mode() == "daemon":
        return Placement()
    foreign = forked_by_unknown_server()
    if foreign is not None:
        foreign = foreign.replace("%", "%%")  # the refusal is a logging format
        return Placement(
            refusal=f"%s runs in {foreign}: a server reloader does not know, where replacing it "
            f"by exec would kill the server. Not reloading. Supported: {SUPPORTED}; under "
            "another pre-forking server, use its own reload option, or run "
            "gunicorn/uWSGI for development."
        )
    return Placement()


def detect_restarter() -> Restarter:
    """The strategy for this process. Call it where the app is served (a gunicorn worker, a
    mod_wsgi daemon process, a uWSGI worker), not in a parent that forks them."""
    if mod_wsgi_mode() == "daemon":
        return ModWsgiRestarter()
    if in_gunicorn_worker():
        return GunicornRestarter()
    if uwsgi.uwsgi_module() is not None:
        return uwsgi.UwsgiRestarter()
    return ExecRestarter()
