"""uWSGI: have the master replace an exited worker at once, not on its next once-a-second tick.
Read from uWSGI's source (core/master.c, core/event.c of the 2.0 branch), checked on 2.0.31.

The master's loop reaps exited children (`waitpid(WNOHANG)`) at its top, then waits on its
event queue for up to a second (`epoll_wait`, a 1 s timeout); any return from that wait (an
event, or EINTR, which it ignores) goes back to the top, which reaps and respawns every exited
worker in turn. It installs no SIGCHLD handler, so a worker's exit wakes nothing:
its replacement is forked 0-1 s later.

A handler for SIGCHLD in the master makes the kernel interrupt that wait when a worker
becomes reapable, the earliest moment the master can act on it. The signal must land in the
main thread, the one waiting: in 2.0.31's master (2 workers x 4 threads) it is the only thread;
ours block signals. The handler is
Python's own C-level one, which only marks the signal pending (async-signal-safe); the Python
function behind it runs only if the master runs Python again, and does nothing. SA_RESTART
(`siginterrupt(False)`) restarts the master's other system calls; `epoll_wait` is never
restarted, which is the point. Workers get the default action back before they load anything,
so an application's `subprocess` sees what it would see without us.

Only where our code runs in the master: the default loading mode (the master imports
`reloader.wsgi`). With --lazy-apps the master runs no code of ours and keeps its tick.
"""

from __future__ import annotations

import signal
from types import FrameType

__all__ = ["master_wakes_on_exit", "worker_default_sigchld"]


def _pending_only(signum: int, frame: FrameType | None) -> None:
    """The wake-up is the interrupted wait itself: nothing to do here."""


def master_wakes_on_exit() -> None:
    """In the master's main thread, before it forks the workers. A handler someone else set
    (a program that reaps its own children, uWSGI in some later release) is left alone."""
    if signal.getsignal(signal.SIGCHLD) is not signal.SIG_DFL:
        return
    signal.signal(signal.SIGCHLD, _pending_only)
    signal.siginterrupt(signal.SIGCHLD, False)


def worker_default_sigchld() -> None:
    """In a worker right after the fork: SIGCHLD as it was, if we changed it."""
    if signal.getsignal(signal.SIGCHLD) is _pending_only:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
