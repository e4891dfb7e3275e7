"""The restart strategy protocol."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

__all__ = ["Restarter"]


class Restarter(Protocol):
    name: str
    """Names the server in log lines ("gunicorn worker", "mod_wsgi daemon process")."""

    graceful_limit: float | None
    """The server's own bound on a graceful stop of this process, in seconds (gunicorn's
    `graceful_timeout`), or None where it has none we can read."""

    def on_stop(self, begin: Callable[[], None]) -> None:
        """Have `begin` called, in this process, as a stop of it begins: the graceful one
        that `restart()` asks for and, where the server lets us see them, the server's own
        (its shutdown, warm mode's supervisor, a Ctrl-C, whose threads still streaming would
        keep the process). Called once, at boot, from the main thread; `begin` may then run
        in a signal handler, more than once."""
        ...

    def restart(self) -> None:
        """Make the server replace this process: stop taking requests, finish the running
        ones, exit. Called from the watcher thread; must not block for long."""
        ...

    def replace_early(self) -> Callable[[], None] | None:
        """Have the server start this process's replacement now, while this one finishes the
        requests it still answers (a restart of ours is under way); return what to call once
        they have ended, or None where the server cannot."""
        ...

    def stopping(self) -> bool:
        """Whether the server already told this process to stop. A `SystemExit` while the
        application loads is then that stop (Ctrl-C during a worker's boot), not the
        application failing to load."""
        ...
