"""The public entry point: `wrap()`."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from typing import Any

from .log import make_visible
from .restarters.detect import Register, placement
from .settings import read_options
from .target import WSGIApp, describe, import_app, resolve
from .worker import Worker

__all__ = ["wrap"]

logger = logging.getLogger("reloader")

_served: dict[str, tuple[int, WSGIApp]] = {}
"""What each target serves in this process. mod_wsgi runs a .wsgi script again when its import
failed: the second wrap() must not start a second watcher."""


def wrap(target: str | WSGIApp | None = None, **options: Any) -> WSGIApp:
    """Return a WSGI application that serves `target` and restarts this process when a file it
    depends on changes.

    `target` is an import string 'package.module:attribute' (loaded here, so that a failing
    import is shown and watched instead of killing the process), an application already
    imported, or None for `RELOADER_APP` or, failing that, Django's application when
    `DJANGO_SETTINGS_MODULE` is set. The keywords are the settings of `reloader.settings`
    (`enabled`, `extra_files`, `ignore`, `polling`, `show_errors`); each one left out is read
    from its environment variable. Raises `ConfigError` for a bad value.

    With reloading off, or where nothing can restart the process (mod_wsgi's embedded mode,
    uWSGI without threads, a worker of a server we do not know), it returns the application
    itself.
    """
    given = dict(options, target=target if isinstance(target, str) else None)
    opts = read_options(given)
    spec: str | WSGIApp = target if callable(target) else resolve(opts.target)
    if not opts.enabled:
        return import_app(spec) if isinstance(spec, str) else spec
    where = placement()
    if where.refusal is not None:
        make_visible()
        logger.warning(where.refusal, describe(spec))
        return import_app(spec) if isinstance(spec, str) else spec
    key = describe(spec)
    pid, served = _served.get(key, (0, None))
    if served is not None and pid == os.getpid():
        return served
    worker = Worker(spec, opts)
    if where.after_fork is not None:
        make_visible()
        logger.info(where.note, key)
        return _AfterFork(worker, where.after_fork)
    if where.before_boot is not None:
        where.before_boot()
    served = worker.boot()
    _served[key] = (os.getpid(), served)
    return served


class _AfterFork:
    """Stands in for the application in a parent that forks the serving processes, and boots
    the worker in each child right after the fork, before it takes a request."""

    def __init__(self, worker: Worker, after_fork: Register) -> None:
        self._worker = worker
        self._app: WSGIApp | None = None
        after_fork(self._boot)

    def _boot(self) -> None:
        # A process the worker itself forks inherits the booted app and boots nothing.
        if self._app is None:
            self._app = self._worker.boot()

    def __call__(self, environ: Mapping[str, Any], start_response: Any) -> Iterable[bytes]:
        assert self._app is not None, "served before a fork: use a server that forks workers"
        result: Iterable[bytes] = self._app(environ, start_response)
        return result
