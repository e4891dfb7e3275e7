"""Apache/mod_wsgi daemon mode: SIGINT makes a daemon process stop taking requests, let the
running ones finish (up to shutdown-timeout) and exit; Apache starts a fresh one. (SIGUSR1,
mod_wsgi's "graceful" restart, would keep serving old code to new requests until idle.)
Python signal handlers are not involved: mod_wsgi handles the signal itself.

Apache's parent forks the replacement only once it has reaped this process, and it looks for
dead daemon processes once a second (the MPM's maintenance loop: a non-blocking waitpid, then
a one-second sleep that no child's exit interrupts). Every moment this process lingers can
cost a whole tick, so it ends as soon as its requests are done."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable

from .teardown import skip_teardown_at_exit

__all__ = ["ModWsgiRestarter", "mod_wsgi_mode"]


def mod_wsgi_mode() -> str | None:
    """'daemon' or 'embedded' inside Apache/mod_wsgi, None elsewhere.

    Inside Apache, mod_wsgi puts its own `mod_wsgi` module in `sys.modules` with a `version`
    and a `process_group` (empty in embedded mode). The PyPI installer package of the same name
    has neither, so importing it outside Apache does not count.
    """
    module = sys.modules.get("mod_wsgi")
    if module is None or not hasattr(module, "version"):
        return None
    return "daemon" if getattr(module, "process_group", "") else "embedded"


class ModWsgiRestarter:
    name = "mod_wsgi daemon process"
    graceful_limit: float | None = None  # shutdown-timeout is not exposed to Python

    def __init__(self) -> None:
        self._begin: Callable[[], None] | None = None

    def on_stop(self, begin: Callable[[], None]) -> None:
        # Only our own stops: mod_wsgi handles its signals in C, out of Python's sight.
        self._begin = begin

    def restart(self) -> None:
        if self._begin is not None:
            self._begin()
        # mod_wsgi finalises the interpreter once the worker threads have finished their
        # requests; the atexit callbacks run first, and from there the process ends without
        # freeing every module (0.1-0.3 s for a Django process).
        skip_teardown_at_exit()
        os.kill(os.getpid(), signal.SIGINT)

    def stopping(self) -> bool:
        return False  # mod_wsgi stops its daemon processes without raising in Python

    def replace_early(self) -> None:
        return None  # Apache starts a daemon process once the old one is gone
