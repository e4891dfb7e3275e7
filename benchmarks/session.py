"""One server start: launch a tool over a project, wait until every worker serves, stop it.

"Every worker serves" matters: Django imports the URLconf (and so pages/version.py) on a
worker's first request, and a worker that never imported the module would simply import the
new file and look instantly "reloaded".
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .client import HOST, Pollers, fetch
from .procs import Server
from .project import Editor, Project
from .servers import Launch, Tool, environment


class StartupError(RuntimeError):
    """The server did not come up serving the current code."""


@dataclass
class Session:
    tool: Tool
    project: Project
    workers: int
    port: int
    server: Server
    editor: Editor
    expected: int  # processes that should answer: the worker count, or 1 for runserver
    startup_s: float
    serving_pids: set[int]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _wait_ready(server: Server, port: int, token: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.exited() is not None:
            server.finish_reading()
            raise StartupError(f"exited with {server.exited()}:\n{server.tail()}")
        reply = fetch(port, timeout=min(10.0, timeout))
        if reply.token == token:
            return
        time.sleep(0.05)
    raise StartupError(f"not serving {token!r} after {timeout:.0f} s:\n{server.tail()}")


def warm(port: int, token: str, expected: int, timeout: float) -> set[int]:
    """Request until `expected` distinct processes answered with `token` (or time is up)."""
    pids: set[int] = set()
    deadline = time.monotonic() + timeout
    with Pollers(port, count=4, interval=0.005, max_seconds=timeout) as pollers:
        pollers.active.set()
        while len(pids) < expected and time.monotonic() < deadline:
            reply = pollers.take(timeout=0.1)
            if reply is not None and reply.token == token and reply.pid is not None:
                pids.add(reply.pid)
    return pids


@dataclass(frozen=True)
class Host:
    """What every server start of a run shares."""

    workdir: Path  # projects, server roots and logs
    apache_user: str | None  # who Apache runs as when we are root
    apache_problem: str | None  # why mod_wsgi cannot run here, if it cannot
    site: Path | None  # the snapshot of reloader under test


@contextmanager
def running(
    tool: Tool,
    project: Project,
    workers: int,
    threads: int,
    *,
    host: Host,
    slug: str,
    timeout: float,
) -> Iterator[Session]:
    editor = Editor(project, prefix=slug.replace("-", "")[:12] + str(time.monotonic_ns() % 997))
    port = free_port()
    root = host.workdir / "server-roots" / slug
    root.parent.mkdir(exist_ok=True)
    launch = Launch(project, port, workers, threads, root, host.apache_user, host.site)
    argv, extra = tool.command(launch)
    logs = host.workdir / "logs"
    logs.mkdir(exist_ok=True)
    began = time.monotonic()
    server = Server(
        argv, cwd=project.root, env=environment(launch, extra), log=logs / f"{slug}.log"
    )
    try:
        _wait_ready(server, port, editor.token, timeout)
        expected = 1 if tool.single_process else workers
        pids = warm(port, editor.token, expected, timeout)
        yield Session(
            tool, project, workers, port, server, editor, expected, time.monotonic() - began, pids
        )
    finally:
        server.stop()
        editor.restore()
