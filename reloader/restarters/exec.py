"""Any other server run as one process (wsgiref, waitress, a script): replace the process
with a fresh run of the same command line. Requests in flight are cut, as with runserver.

That is only right in the program the user started. In a process some server forked (or
started through multiprocessing) an exec would turn a worker into a second copy of the
server, which then fails on its own socket and can take the whole server down:
`forked_by_unknown_server()` tells those apart.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

__all__ = ["ExecRestarter", "forked_by_unknown_server"]


class ExecRestarter:
    name = "process"
    graceful_limit: float | None = None

    def __init__(self) -> None:
        # Made where the app loads: the mask the new image must start with. The exec comes
        # from the watcher thread, which blocks the signals (see `threads.py`), and a process
        # keeps its mask across exec: without this, Ctrl-C and SIGTERM would reach the new
        # image never.
        self._mask = signal.pthread_sigmask(signal.SIG_BLOCK, ())

    def on_stop(self, begin: Callable[[], None]) -> None:
        pass  # exec stops nothing gracefully

    def restart(self) -> None:
        # Flush what print() buffered; exec discards the old process's memory.
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(AttributeError, OSError, ValueError):
                stream.flush()
        signal.pthread_sigmask(signal.SIG_SETMASK, self._mask)
        os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])

    def stopping(self) -> bool:
        return False  # a signal that stops a plain process does not pass through us

    def replace_early(self) -> None:
        return None  # exec replaces this very process


def forked_by_unknown_server() -> str | None:
    """What shows that this process is a server's worker rather than the program the user
    started, or None.

    A process forked without exec runs its parent's executable with its parent's command line
    (an exec'd one has its own, even when a Python program such as pytest or a process
    manager started it); multiprocessing marks the processes it starts, forked or spawned.
    """
    multiprocessing = sys.modules.get("multiprocessing")
    if multiprocessing is not None and multiprocessing.parent_process() is not None:
        return f"a process started by multiprocessing (parent pid {os.getppid()})"
    parent = os.getppid()
    if parent <= 1:
        return None
    try:
        same_program = os.path.samefile(f"/proc/{parent}/exe", "/proc/self/exe")
        cmdline = Path(f"/proc/{parent}/cmdline").read_bytes()
        same_command = cmdline == Path("/proc/self/cmdline").read_bytes()
    except OSError:  # not Linux, or the parent is another user's: nothing to go by
        return None
    if same_program and same_command:
        command = cmdline.replace(b"\0", b" ").decode(errors="replace").strip()
        return f"a process forked by pid {parent} ({command}) without exec"
    return None
