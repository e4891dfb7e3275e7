"""Warm reloads for gunicorn: `gunicorn -c python:reloader.gunicorn ...`.

One watcher for the whole server instead of one per worker, and workers forked from an
arbiter that already imported the third-party code they use, so a restart imports only the
project's own modules. From a `gunicorn.conf.py` of your own, import the hooks:

    from reloader.gunicorn import *  # noqa: F403

Each hook below is a gunicorn server hook; `wsgi_app` is the application to serve, configured
by RELOADER_APP / DJANGO_SETTINGS_MODULE as for `reloader.wsgi`.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from pathlib import Path
from typing import Any

from .log import make_visible
from .settings import read_options

__all__ = [
    "child_exit",
    "on_exit",
    "on_starting",
    "post_request",
    "pre_fork",
    "worker_exit",
    "wsgi_app",
]

wsgi_app = "reloader.wsgi:application"

_arbiter: Any = None

logger = logging.getLogger("reloader")


def _serve_through_the_wrapper(server: Any) -> None:
    """`gunicorn -c python:reloader.gunicorn mysite.wsgi:application`: the application named on
    the command line overrides `wsgi_app`. Served as it is, it would run no wrapper, so no
    worker would report what to watch and no save would ever reload: the wrapper serves it,
    unless the module named is a wrapper itself (a `dev_wsgi.py` that calls `wrap()`)."""
    application: Any = getattr(server, "app", None)
    named = getattr(application, "app_uri", None)
    if not isinstance(named, str) or named == wsgi_app or not hasattr(application, "wsgi"):
        return  # our own wsgi_app, or a paste deployment or an application class of its own
    if _imports_reloader(named.partition(":")[0]):
        return
    os.environ["RELOADER_APP"] = named
    application.app_uri = wsgi_app
    make_visible()
    logger.info("serving %s through reloader's wrapper (as RELOADER_APP)", named)


_IMPORTS_RELOADER = re.compile(r"^\s*(from|import)\s+reloader\b", re.MULTILINE)


def _imports_reloader(module: str) -> bool:
    """Whether the source of `module` imports reloader: read, not imported, since the arbiter
    imports nothing of the project's before it forks."""
    relative = Path(*module.split("."))
    for entry in (os.getcwd(), *sys.path):
        for candidate in (
            Path(entry, relative).with_suffix(".py"),
            Path(entry, relative, "__init__.py"),
        ):
            if candidate.is_file():
                try:
                    return (
                        _IMPORTS_RELOADER.search(candidate.read_text(errors="replace")) is not None
                    )
                except OSError:
                    return False
    return False


def on_starting(server: Any) -> None:
    global _arbiter
    if not read_options({}).enabled:
        return
    _serve_through_the_wrapper(server)
    from .warm.arbiter import WarmArbiter

    _arbiter = WarmArbiter(server)
    _arbiter.start()


def pre_fork(server: Any, worker: Any) -> None:
    if _arbiter is not None:
        _arbiter.before_fork(worker)


def post_request(worker: Any, req: Any, environ: Any, resp: Any) -> None:
    if _arbiter is not None:
        from .warm.worker import after_request

        after_request()


def child_exit(server: Any, worker: Any) -> None:
    if _arbiter is not None:
        _arbiter.worker_exited(worker.pid)


def on_exit(server: Any) -> None:
    if _arbiter is not None:
        _arbiter.stop()


def worker_exit(server: Any, worker: Any) -> None:
    if _arbiter is not None:
        from .restarters.gunicorn import stopping_cleanly
        from .restarters.teardown import skip_teardown_at_exit

        if stopping_cleanly():
            # At exit, not now: the interpreter first waits for the application's own
            # threads, as a worker without us would, up to the grace.
            skip_teardown_at_exit()
