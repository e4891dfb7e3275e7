"""gunicorn: a worker that gets SIGTERM stops accepting, finishes its requests (sync, gthread
and gevent alike, within graceful_timeout) and exits; the arbiter forks a fresh one. The
listening socket stays open in the arbiter, so new connections wait in the backlog."""

from __future__ import annotations

import os
import signal
import sys

__all__ = ["GunicornRestarter", "gunicorn_preloading", "in_gunicorn_worker"]


def in_gunicorn_worker() -> bool:
    return "gunicorn.workers.base" in sys.modules


class GunicornRestarter:
    name = "gunicorn worker"

    def restart(self) -> None:
        os.kill(os.getpid(), signal.SIGTERM)


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
