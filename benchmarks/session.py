"""One server start: launch a tool over a project, wait until every worker serves, stop it.

"Every worker serves" matters: Django imports the URLconf (and so pages/version.py) on a
worker's first request, and a worker that never imported the module would simply import the
new file and look instantly "reloaded". So every page whose module the session will edit is
requested until each worker answered it with the current token.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .client import HOST, Pollers, fetch
from .procs import Server
from .project import Editor, Project, Target
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
    editors: dict[Target, Editor]  # project.view's always: readiness, idle and throughput
    expected: int  # processes that should answer: the worker count, or 1 for runserver
    startup_s: float
    warmed: dict[Target, set[int]]  # the processes that answered each page's current token

    @property
    def editor(self) -> Editor:
        return self.editors[self.project.view]

    @property
    def serving_pids(self) -> set[int]:
        return self.warmed[self.project.view]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _wait_ready(server: Server, port: int, editor: Editor, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.exited() is not None:
            server.finish_reading()
            raise StartupError(f"exited with {server.exited()}:\n{server.tail()}")
        reply = fetch(port, editor.target.url, timeout=min(10.0, timeout))
        if reply.token == editor.token:
            return
        time.sleep(0.05)
    raise StartupError(f"not serving {editor.token!r} after {timeout:.0f} s:\n{server.tail()}")


def warm(port: int, editor: Editor, expected: int, timeout: float) -> set[int]:
    """Request the editor's page until `expected` processes served its token, or time is up."""
    pids: set[int] = set()
    deadline = time.monotonic() + timeout
    url = editor.target.url
    with Pollers(port, url, count=4, interval=0.005, max_seconds=timeout) as pollers:
        pollers.active.set()
        while len(pids) < expected and time.monotonic() < deadline:
            reply = pollers.take(timeout=0.1)
            if reply is not None and reply.token == editor.token and reply.pid is not None:
                pids.add(reply.pid)
    return pids


@dataclass(frozen=True)
class Host:
    """What every server start of a run shares."""

    workdir: Path  # projects, server roots and logs
    apache_user: str | None  # who Apache runs as when we are root
    apache_problem: str | None  # why mod_wsgi cannot run here, if it cannot
    site: Path | None  # the snapshot of reloader under test
    wagtail_site: Path | None = None  # a migrated Wagtail site to copy (--wagtail-site)


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
    targets: Sequence[Target] = (),
) -> Iterator[Session]:
    """`targets`: the modules the session edits besides the project's view."""
    prefix = slug.replace("-", "")[:12] + str(time.monotonic_ns() % 997)
    editors: dict[Target, Editor] = {}
    for i, target in enumerate(dict.fromkeys((project.view, *targets))):
        # Tokens unique to a page too: one page answering with another's code is never fresh.
        editors[target] = Editor(project, f"{prefix}t{i}" if i else prefix, target)
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
        view = editors[project.view]
        _wait_ready(server, port, view, timeout)
        expected = 1 if tool.single_process else workers
        warmed = {project.view: warm(port, view, expected, timeout)}
        startup = time.monotonic() - began  # comparable across cells, whatever they edit
        warmed |= {
            t: warm(port, e, expected, timeout) for t, e in editors.items() if t not in warmed
        }
        yield Session(tool, project, workers, port, server, editors, expected, startup, warmed)
    finally:
        server.stop()
        for editor in editors.values():
            editor.restore()
