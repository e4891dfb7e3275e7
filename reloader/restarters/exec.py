"""Any other server run as one process (wsgiref, waitress, a script): replace the process
with a fresh run of the same command line. Requests in flight are cut, as with runserver."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable

__all__ = ["ExecRestarter"]


class ExecRestarter:
    name = "process"
    graceful_limit: float | None = None

    def on_graceful_stop(self, begin: Callable[[], None]) -> None:
        pass  # exec stops nothing gracefully

    def restart(self) -> None:
        # Flush what print() buffered; exec discards the old process's memory.
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(AttributeError, OSError, ValueError):
                stream.flush()
        os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])

    def stopping(self) -> bool:
        return False  # a signal that stops a plain process does not pass through us
