"""gunicorn's gthread worker can hang on a Ctrl-C: its SIGQUIT and SIGINT handler calls the
thread pool's `shutdown()`, which takes the pool's lock, and the handler runs on the main
thread, which may hold that very lock: `submit()` keeps it while the pool starts a thread, as
it does for a fresh worker's first concurrent requests (CPython #121649). The worker then
waits forever, and the stop takes gunicorn's graceful timeout before the arbiter kills it.
Reloads start workers all day, so that moment comes often.

`safe_quit(worker)` makes the handler to put in its place: when the lock stays taken, it stops
the pool as `shutdown(wait=False)` would, without the lock, and lets gunicorn's base handler
exit. A quit that lands while the interpreter already waits for the threads at its exit ends
that wait without the traceback the interpreter would print for it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

__all__ = ["safe_quit"]

# A lock a worker thread holds is free within microseconds; only the thread the signal
# interrupted never lets go.
_LOCK_WAIT_S = 0.1


def safe_quit(worker: Any) -> Callable[[int, FrameType | None], None] | None:
    """A safe quit handler for `worker`, if it is a gthread worker; None otherwise."""
    gthread = sys.modules.get("gunicorn.workers.gthread")
    base = sys.modules.get("gunicorn.workers.base")
    if gthread is None or base is None or not isinstance(worker, gthread.ThreadWorker):
        return None
    original = worker.handle_quit

    def handle_quit(signum: int, frame: FrameType | None) -> None:
        if _in_threading_shutdown(frame):
            _quiet_exit_from_threading_shutdown()
        pool = getattr(worker, "tpool", None)
        lock = getattr(pool, "_shutdown_lock", None)
        queue = getattr(pool, "_work_queue", None)
        if pool is None or lock is None or queue is None or _comes_free(lock):
            original(signum, frame)
            return
        # What shutdown(wait=False) does: each thread that takes the None puts it back for
        # the next, so one wakes them all, the one submit() was starting included.
        pool._shutdown = True
        queue.put(None)
        base.Worker.handle_quit(worker, signum, frame)

    return handle_quit


def _comes_free(lock: Any) -> bool:
    if not lock.acquire(timeout=_LOCK_WAIT_S):
        return False
    lock.release()
    return True


def _in_threading_shutdown(frame: FrameType | None) -> bool:
    """Whether the signal came while the interpreter waits for the threads at its exit (a
    worker that stops, as the arbiter's Ctrl-C reaches it)."""
    while frame is not None:
        if frame.f_code.co_name == "_shutdown" and frame.f_globals.get("__name__") == "threading":
            return True
        frame = frame.f_back
    return False


def _quiet_exit_from_threading_shutdown() -> None:
    """The SystemExit that gunicorn's handler raises ends that wait, as it should, but the
    interpreter reports it as an exception it ignored, with a traceback, on every Ctrl-C that
    lands there: leave that one report out."""
    previous = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        if not isinstance(unraisable.exc_value, SystemExit):
            previous(unraisable)

    sys.unraisablehook = hook
