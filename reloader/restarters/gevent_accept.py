"""gunicorn's gevent worker keeps accepting connections for up to a second after its SIGTERM:
its main loop looks at `alive` once a second (`gevent.sleep(1.0)`) and only then closes its
servers. A worker stopping for new code would answer them with that code, after its fresh
peers may have answered with the new one (warm mode's workers all stop at once and trust
that each stops taking connections as it is told).

`stops_accepting(worker)` returns, for a gevent worker, what stops its servers accepting now:
what it accepted goes on until done, and new connections wait in the backlog for a fresh
worker. The sockets stay open until gunicorn closes the servers a second later: a connection
accepted just before the stop, whose greenlet has not yet run, asks its listener for its name
first thing, and a closed one would make gunicorn drop it unanswered. It knows the servers by
watching them start (gunicorn keeps them in a local variable of its `run()`), which is why it
must be called before `run()`.
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Callable
from typing import Any

__all__ = ["stops_accepting"]


def stops_accepting(worker: Any) -> Callable[[], None] | None:
    """What stops `worker`'s servers accepting, if it is a gevent worker; None otherwise."""
    ggevent = sys.modules.get("gunicorn.workers.ggevent")
    if ggevent is None or not isinstance(worker, ggevent.GeventWorker):
        return None
    import gevent
    from gevent.baseserver import BaseServer

    # By descriptor: gevent serves a socket object of its own over the same one.
    listeners = {listener.fileno() for listener in getattr(worker, "sockets", ())}
    servers: weakref.WeakSet[Any] = weakref.WeakSet()
    start = BaseServer.start

    def start_and_note(server: Any) -> None:
        start(server)
        if server.socket.fileno() in listeners:
            servers.add(server)

    BaseServer.start = start_and_note

    def stop_now() -> None:
        for server in list(servers):
            server.stop_accepting()
            # A pool that was full starts accepting again as a slot frees; not any more.
            server.start_accepting = _never

    # Out of the signal handler, as gunicorn's own handlers do.
    return lambda: gevent.spawn(stop_now)


def _never() -> None:
    pass
