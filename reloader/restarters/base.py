"""The restart strategy protocol."""

from __future__ import annotations

from typing import Protocol

__all__ = ["Restarter"]


class Restarter(Protocol):
    name: str
    """Names the server in log lines ("gunicorn worker", "mod_wsgi daemon process")."""

    def restart(self) -> None:
        """Make the server replace this process: stop taking requests, finish the running
        ones, exit. Called from the watcher thread; must not block for long."""
        ...

    def stopping(self) -> bool:
        """Whether the server already told this process to stop. A `SystemExit` while the
        application loads is then that stop (Ctrl-C during a worker's boot), not the
        application failing to load."""
        ...
