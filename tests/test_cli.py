"""`python -m reloader` in a copy of the demo project: real gunicorn, real HTTP, real signals.

What a runserver user notices: it says where it serves, the pid they started is the server,
a view edit is served at once, the access log reads like runserver's (coloured in a terminal
only), a typo in an option is refused with the accepted values, and Ctrl-C leaves nothing
running.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
from conftest import stop_servers
from support import (
    PreforkServer,
    children,
    clean_env,
    free_port,
    get,
    group_members,
    try_get,
    wait_for_body,
    wait_until,
    write,
)

pytestmark = pytest.mark.gunicorn

SUPERVISOR = "reloader.warm"
ACCESS_RE = r'\[\d\d/\w{3}/\d{4} \d\d:\d\d:\d\d\] "GET %s HTTP/1.1" %d \d+'
ESC = "\x1b["

StartCommand = Callable[..., PreforkServer]


@pytest.fixture
def run_reloader(tmp_path: Path) -> Iterator[StartCommand]:
    """``start(*args, cwd=..., env={...}, terminal=False, warm=True)``: `python -m reloader
    127.0.0.1:<free port> -w 2 *args`, waited for until every worker runs and / answers.
    Every server is stopped at teardown, which fails if any of its processes survives."""
    servers: list[PreforkServer] = []

    def start(
        *args: str,
        cwd: Path,
        env: Mapping[str, str] | None = None,
        terminal: bool = False,
        warm: bool = True,
    ) -> PreforkServer:
        port = free_port()
        run_dir = tmp_path / f"reloader-{len(servers)}"
        run_dir.mkdir()
        server = PreforkServer(
            argv=[sys.executable, "-m", "reloader", f"127.0.0.1:{port}", "-w", "2", *args],
            log_path=run_dir / "server.log",
            # gunicorn's control socket goes to $XDG_RUNTIME_DIR (else ~/.gunicorn): private.
            env=clean_env({"XDG_RUNTIME_DIR": str(run_dir), **(env or {})}),
            cwd=cwd,
            base_url=f"http://127.0.0.1:{port}",
            workers=2,
            helpers=(SUPERVISOR,) if warm else (),
            terminal=terminal,
        )
        servers.append(server)
        server.start()
        wait_until(
            lambda: server.check_alive() or try_get(server.url("/")),
            message=lambda: f"python -m reloader to answer /:\n{server.log_tail()}",
        )
        server.wait_workers()
        return server

    yield start
    stop_servers(servers)


def _access_lines(server: PreforkServer, path: str, status: int) -> list[str]:
    pattern = re.compile(ACCESS_RE % (re.escape(path), status))
    return [line for line in server.log().replace("\r", "").splitlines() if pattern.search(line)]


def test_serves_the_project_it_is_run_in_and_reloads_a_view_edit(
    run_reloader: StartCommand, demo_project: Path
) -> None:
    server = run_reloader(cwd=demo_project)
    log = server.log()
    assert f"Starting development server at {server.url()}" in log
    assert "Quit the server with CONTROL-C." in log
    assert "Serving Django settings 'demo.settings'" in log
    # The pid the user started is gunicorn's arbiter (exec, no wrapper process between).
    assert f"Listening at: {server.base_url} ({server.pid})" in log
    assert len(children(server.pid)) == 3, "two workers and the warm watcher"

    assert "v1 pid=" in get(server.url("/version/")).body
    write(demo_project / "pages" / "version.py", 'VERSION = "v2"\n')
    wait_for_body(server.url("/version/"), "v2 pid=", status=200)

    get(server.url("/no-such-page/"))
    wait_until(lambda: _access_lines(server, "/no-such-page/", 404), message="the 404 line")
    lines = _access_lines(server, "/version/", 200)
    assert lines, server.log_tail()
    assert ESC not in server.log(), "colours in a piped log"


@pytest.mark.parametrize(
    ("env", "coloured"), [({}, True), ({"NO_COLOR": "1"}, False)], ids=["tty", "NO_COLOR"]
)
def test_access_log_is_coloured_in_a_terminal_only(
    run_reloader: StartCommand, demo_project: Path, env: dict[str, str], coloured: bool
) -> None:
    server = run_reloader("--no-reload", cwd=demo_project, env=env, terminal=True, warm=False)
    get(server.url("/version/"))
    get(server.url("/no-such-page/"))
    (missing,) = wait_until(
        lambda: _access_lines(server, "/no-such-page/", 404), message="the 404 line"
    )
    (found,) = _access_lines(server, "/version/", 200)
    if coloured:
        # runserver's palette: 404 in yellow, 2xx plain.
        assert missing.startswith("\x1b[33m[") and missing.endswith("\x1b[0m"), repr(missing)
        assert ESC not in found, repr(found)
    else:
        assert ESC not in missing and ESC not in found, repr(missing)


def test_no_reload_serves_the_app_without_the_wrapper(
    run_reloader: StartCommand, demo_project: Path
) -> None:
    server = run_reloader("--no-reload", cwd=demo_project, warm=False)
    assert "v1 pid=" in get(server.url("/version/")).body
    assert len(children(server.pid)) == 2, "two workers and no watcher"
    assert "reloader:" not in server.log(), "the wrapper logged"


@pytest.mark.parametrize("target", ["group", "pid"])
def test_ctrl_c_leaves_nothing_running(
    run_reloader: StartCommand, demo_project: Path, target: str
) -> None:
    """A terminal's Ctrl-C signals the whole process group; `kill -INT` only the pid."""
    server = run_reloader(cwd=demo_project)
    processes = [server.pid, *children(server.pid)]
    assert len(processes) == 4
    if target == "group":
        os.killpg(server.pid, signal.SIGINT)
    else:
        os.kill(server.pid, signal.SIGINT)
    server.wait_exit()
    wait_until(
        lambda: not group_members(server.pid) and not any(_alive(p) for p in processes),
        message=lambda: f"every process to exit: {group_members(server.pid)}",
    )
    assert "Traceback" not in server.log(), server.log_tail()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-k", "tornado"], "invalid choice: 'tornado' (choose from 'gthread', 'sync', 'gevent')"),
        (["--workers", "0"], "argument -w/--workers: '0': accepted: a whole number, 1 or more"),
        (["70000"], "port 70000 out of range; accepted: 1 to 65535"),
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["no/such:app"], "is neither an address (PORT or ADDR:PORT) nor an application"),
    ],
)
def test_a_bad_option_is_refused_with_the_accepted_values(
    demo_project: Path, args: list[str], message: str
) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "reloader", *args],
        cwd=demo_project,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert "Starting development server" not in proc.stdout


def test_outside_a_project_it_says_what_to_do(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "reloader"],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert f"no manage.py in {tmp_path}" in proc.stderr
    assert "--settings" in proc.stderr
