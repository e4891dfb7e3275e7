"""gunicorn: a worker that gets SIGTERM stops accepting, finishes its requests (sync, gthread
and gevent alike, within graceful_timeout) and exits; the arbiter forks a fresh one. The
listening socket stays open in the arbiter, so new connections wait in the backlog.

The arbiter forks the fresh one when the old one has exited. So a server of one worker
(gunicorn's default) would serve nothing new until the slowest request in flight at a restart
has ended (a slow page; a stream, until its next chunk). Its worker asks for its replacement
at once instead: SIGTTIN, gunicorn's "one worker more", now, and SIGTTOU, "one less", once
those requests are done, when the arbiter stops the older of its two workers, this one. With
more workers the others' replacements serve meanwhile, and booting every replacement at once
would only make them share the CPU.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

from ..threads import start_thread
from .gevent_accept import stops_accepting
from .gthread_quit import safe_quit
from .teardown import skip_teardown_at_exit

__all__ = [
    "GunicornRestarter",
    "gunicorn_preloading",
    "in_gunicorn_worker",
    "stopping_cleanly",
]


def in_gunicorn_worker() -> bool:
    return "gunicorn.workers.base" in sys.modules


def _on_stack(module: str, kind: str) -> Any:
    """The object of class `module.kind` that a caller of ours holds as `self` or `worker`."""
    cls = getattr(sys.modules.get(module), kind, None)
    frame = sys._getframe(2)
    while isinstance(cls, type) and frame is not None:
        for name in ("self", "worker"):
            candidate = frame.f_locals.get(name)
            if isinstance(candidate, cls):
                return candidate
        frame = frame.f_back  # type: ignore[assignment]
    return None


def _serving_worker() -> Any:
    """gunicorn's Worker object of this process, from the stack that is loading the app
    (`self` in Worker.load_wsgi, `worker` in Arbiter.spawn_worker after a preload fork)."""
    return _on_stack("gunicorn.workers.base", "Worker")


_STOPS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGQUIT})


def _stop_signalled_at_fork() -> bool:
    """Whether a stop reached this worker between its fork and its own signal handlers, and
    went to the arbiter's handler it inherited, which queues the signal in this process's copy
    of the arbiter, where nothing reads it. A Ctrl-C or stop right after a save (a worker is
    being forked) was lost so, and gunicorn then waited out its graceful timeout for this
    worker; gevent's workers, which patch the standard library first, lost it most often."""
    arbiter = _on_stack("gunicorn.arbiter", "Arbiter")
    queued = getattr(arbiter, "SIG_QUEUE", None)
    seen: list[object] = []
    if isinstance(queued, list):  # older gunicorn releases
        seen, queued[:] = list(queued), []
    elif queued is not None:
        with contextlib.suppress(queue.Empty):
            while True:
                seen.append(queued.get_nowait())
    return any(sig in _STOPS for sig in seen)


def _swap_handler(worker: Any, name: str, handler: Callable[..., None], *signums: int) -> None:
    """Make `handler` gunicorn's `worker.<name>`: on the instance, for an init_signals() still
    to come (a boot right after a --preload fork), and in place for `signums`, where gunicorn
    installed the old one already."""
    original = getattr(worker, name)
    setattr(worker, name, handler)
    for signum in signums:
        with contextlib.suppress(ValueError):  # not on the main thread: nothing installed
            if signal.getsignal(signum) == original:
                signal.signal(signum, handler)


def _nothing() -> None:
    pass


class GunicornRestarter:
    name = "gunicorn worker"

    def __init__(self) -> None:
        self._worker = _serving_worker()
        self._stop_accepting = stops_accepting(self._worker)
        quit_handler = safe_quit(self._worker)
        if quit_handler is not None:
            _swap_handler(self._worker, "handle_quit", quit_handler, signal.SIGQUIT, signal.SIGINT)
        if self._worker is not None and _stop_signalled_at_fork():
            self._worker.alive = False  # as each stop handler begins: it serves nothing, exits
        timeout = getattr(getattr(self._worker, "cfg", None), "graceful_timeout", None)
        self.graceful_limit: float | None = (
            float(timeout) if isinstance(timeout, (int, float)) and timeout > 0 else None
        )

    def on_stop(self, begin: Callable[[], None]) -> None:
        """SIGTERM is gunicorn's graceful stop, whoever sends it (our restart, warm mode's
        supervisor, the arbiter's own shutdown): run `begin`, then gunicorn's handler.
        SIGINT and SIGQUIT are its quick stop (Ctrl-C, and the arbiter's at a Ctrl-C): begin
        there too, since a gthread worker's main thread exits at once but the interpreter
        then waits for the pool's threads, and one serving an event stream never ends."""
        worker = self._worker
        if worker is None:
            return
        original_exit, original_quit = worker.handle_exit, worker.handle_quit
        stop_accepting = self._stop_accepting

        def handle_exit(signum: int, frame: FrameType | None) -> None:
            begin()
            original_exit(signum, frame)
            if stop_accepting is not None:
                stop_accepting()

        def handle_quit(signum: int, frame: FrameType | None) -> None:
            # From a thread: the quit's SystemExit, here or in the handler of the arbiter's
            # SIGQUIT that Python may run inside this one, would cut `begin` short.
            start_thread(begin)
            original_quit(signum, frame)

        _swap_handler(worker, "handle_exit", handle_exit, signal.SIGTERM)
        _swap_handler(worker, "handle_quit", handle_quit, signal.SIGQUIT, signal.SIGINT)

    def restart(self) -> None:
        worker = self._worker
        if worker is not None and signal.getsignal(signal.SIGTERM) != worker.handle_exit:
            # Still booting in gunicorn's fork hook (--preload): SIGTERM would go to the
            # arbiter's handler, inherited with the fork, which queues it for an arbiter loop
            # that never runs here. The worker has not entered its serving loop yet, which
            # runs only while `alive`: it returns at once and the worker exits cleanly.
            worker.alive = False
            return
        skip_teardown_at_exit()
        os.kill(os.getpid(), signal.SIGTERM)
        # The gthread worker waits for events for up to a second and only then looks at
        # `alive`: wake it through its own queue so it stops taking requests now. (The sync
        # worker wakes on the signal itself.)
        defer = getattr(getattr(worker, "method_queue", None), "defer", None)
        if callable(defer):
            worker.alive = False
            defer(_nothing)

    def replace_early(self) -> Callable[[], None] | None:
        if getattr(getattr(self._worker, "cfg", None), "workers", None) != 1:
            return None
        arbiter = getattr(self._worker, "ppid", None)
        # Never to a process without gunicorn's handlers (one that execs a new gunicorn: USR2,
        # warm mode): these two signals stop a process by default.
        if not isinstance(arbiter, int) or not _catches(arbiter, signal.SIGTTIN, signal.SIGTTOU):
            return None
        os.kill(arbiter, signal.SIGTTIN)

        def give_back() -> None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(arbiter, signal.SIGTTOU)

        return give_back

    def stopping(self) -> bool:
        # Every stop signal's handler (Worker.handle_exit, handle_quit) clears `alive` first;
        # SIGINT and SIGQUIT then raise SystemExit wherever the worker was, even in an import.
        return getattr(self._worker, "alive", True) is False


def _catches(pid: int, *signums: int) -> bool:
    """Whether process `pid` has handlers for all of `signums` (its SigCgt mask, Linux)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            caught = next(int(line.split()[1], 16) for line in status if line.startswith("SigCgt:"))
    except (OSError, StopIteration, ValueError, IndexError):
        return False
    return all(caught >> (signum - 1) & 1 for signum in signums)


def stopping_cleanly() -> bool:
    """In gunicorn's worker_exit hook: whether the worker is ending with exit status 0 (its
    `sys.exit(0)` is under way), rather than failing."""
    exc = sys.exc_info()[1]
    return isinstance(exc, SystemExit) and exc.code in (0, None)


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
