"""gunicorn: a worker that gets SIGTERM stops accepting, finishes its requests (sync, gthread
and gevent alike, within graceful_timeout) and exits; the arbiter forks a fresh one. The
listening socket stays open in the arbiter, so new connections wait in the backlog."""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

__all__ = ["GunicornRestarter", "gunicorn_preloading", "in_gunicorn_worker"]


def in_gunicorn_worker() -> bool:
    return "gunicorn.workers.base" in sys.modules


def _serving_worker() -> Any:
    """gunicorn's Worker object of this process, from the stack that is loading the app
    (`self` in Worker.load_wsgi, `worker` in Arbiter.spawn_worker after a preload fork)."""
    base = sys.modules.get("gunicorn.workers.base")
    frame = sys._getframe(1)
    while base is not None and frame is not None:
        for name in ("self", "worker"):
            candidate = frame.f_locals.get(name)
            if isinstance(candidate, base.Worker):
                return candidate
        frame = frame.f_back  # type: ignore[assignment]
    return None


def _nothing() -> None:
    pass


class GunicornRestarter:
    name = "gunicorn worker"

    def __init__(self) -> None:
        self._worker = _serving_worker()

    def restart(self) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        # The gthread worker waits for events for up to a second and only then looks at
        # `alive`: wake it through its own queue so it stops taking requests now. (The sync
        # worker wakes on the signal itself.)
        worker = self._worker
        defer = getattr(getattr(worker, "method_queue", None), "defer", None)
        if callable(defer):
            worker.alive = False
            defer(_nothing)


def gunicorn_preloading() -> bool:
    """True while gunicorn's arbiter loads the app before forking (`--preload`). A worker's
    stack also holds arbiter frames (it was forked inside one), so a worker frame settles it."""
    frame = sys._getframe(1)
    in_arbiter = False
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if name.startswith("gunicorn.workers."):
            return False
        in_arbiter = in_arbiter or name == "gunicorn.arbiter"
        frame = frame.f_back  # type: ignore[assignment]
    return in_arbiter
