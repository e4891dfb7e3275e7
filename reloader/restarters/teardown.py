"""Ending a process whose graceful stop is over without the interpreter's teardown: freeing
every module and object of a Django process takes 0.1 s and more, and each server (gunicorn's
arbiter, Apache's parent, uWSGI's master) starts the replacement only once this process is
gone. Shared by every restarter: only the exit code differs from one server to another."""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
from typing import NoReturn

__all__ = ["exit_without_teardown", "skip_teardown_at_exit"]


def exit_without_teardown(code: int = 0) -> NoReturn:
    """End the process now, with exit status `code`. atexit handlers (logging's flush among
    them) and the flush of stdout and stderr still happen."""
    atexit.unregister(exit_without_teardown)  # when called as one, not to run twice
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def skip_teardown_at_exit(code: int = 0) -> None:
    """Let the exit under way end the process as `exit_without_teardown(code)` does, once the
    interpreter has waited for the application's own threads (a mail being sent) and reached
    its atexit callbacks: the steps a process without us takes, minus the teardown."""
    atexit.register(exit_without_teardown, code)
