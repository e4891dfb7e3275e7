"""A real OS thread and a stop flag, even where gevent patched `threading`.

Under gunicorn's gevent worker, `threading.Thread` makes a greenlet: a watcher blocking in
Rust would then freeze the worker's event loop. The primitives here come from the original
`_thread` module, and the thread is a daemon so it never delays the process's exit (mod_wsgi
waits for non-daemon threads until its shutdown timeout).

Our threads block the asynchronous signals, so a signal sent to the process is always taken
by a thread of the server's. Python runs its own handlers in the main thread anyway, but
uWSGI and mod_wsgi handle theirs in C, in whichever thread the kernel picks: uWSGI's handler
for a worker's stop calls exit(), and from our watcher thread that exit waits for the main
thread forever while the master waits for the worker.
"""

from __future__ import annotations

import _thread
import signal
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["StopFlag", "allocate_lock", "allocate_rlock", "start_thread"]


def _original(name: str) -> Any:
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("_thread"):
        return monkey.get_original("_thread", name)
    return getattr(_thread, name)


def allocate_lock() -> Any:
    """A lock the watcher thread can share with the serving code: gevent's patched one must
    not be taken by a real thread while a greenlet waits for it (gevent raises LoopExit)."""
    return _original("allocate_lock")()


_FAULTS = {
    signal.SIGABRT,
    signal.SIGBUS,
    signal.SIGFPE,
    signal.SIGILL,
    signal.SIGSEGV,
    signal.SIGSYS,
    signal.SIGTRAP,
}
"""Raised by the faulting thread itself: blocking them would hide a crash."""


def allocate_rlock() -> Any:
    """A reentrant lock of the same kind: one that a signal handler may take again in the
    thread it interrupted."""
    return _original("RLock")()


def start_thread(function: Callable[[], None]) -> None:
    """Run `function` in a new OS thread that takes no signal sent to the process. The
    thread inherits the mask, so it never runs a moment with the signals open."""
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals() - _FAULTS)
    try:
        _original("start_new_thread")(function, ())
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


class StopFlag:
    """What `threading.Event` offers that the watcher needs, on an unpatched lock."""

    def __init__(self) -> None:
        self._lock = allocate_lock()
        self._lock.acquire()
        self._set = False

    def set(self) -> None:
        if not self._set:
            self._set = True
            self._lock.release()

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout: float) -> bool:
        """Sleep up to `timeout` seconds, less if the flag is set; return the flag."""
        if self._lock.acquire(True, timeout):
            self._lock.release()
        return self._set
