"""Servers reloader has no strategy for. Run as one process (wsgiref, waitress), the process
re-executes itself on a change, as runserver does; in a worker that an unknown server forked,
reloader serves without reloading and says why, rather than exec over the server's worker."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest
from support import (
    QUIET_PERIOD,
    PreforkServer,
    Server,
    answer_pid,
    clean_env,
    edit,
    free_port,
    get,
    lines_naming_pid,
    restart_lines,
    signal_mask,
    wait_for_body,
    wait_until,
)

SERVE = """
import sys
from wsgiref.simple_server import make_server
from reloader import wrap

make_server("127.0.0.1", int(sys.argv[1]), wrap("plainapp:application")).serve_forever()
"""


def test_wsgiref_process_reexecutes_itself_with_new_code(
    plain_project: Path, tmp_path: Path
) -> None:
    (plain_project / "serve.py").write_text(SERVE)
    port = free_port()
    server = Server(
        argv=[sys.executable, "serve.py", str(port)],
        log_path=tmp_path / "wsgiref.log",
        env=clean_env(),
        cwd=plain_project,
        base_url=f"http://127.0.0.1:{port}",
    )
    with server.start():
        first = wait_for_body(server.url("/"), "v1 pid=")
        edit(plain_project / "plainversion.py", '"v1"', '"v2"')
        second = wait_for_body(server.url("/"), "v2 pid=")
        # The same process, re-executed: same pid, new code.
        assert first.body.split("pid=")[1] == second.body.split("pid=")[1]
        server.wait_for_log("restarting process")
        assert_stops_at_ctrl_c(server)


def test_waitress_process_reexecs_itself_with_new_code(plain_project: Path, tmp_path: Path) -> None:
    (plain_project / "dev_wsgi.py").write_text(DEV_WSGI)
    port = free_port()
    waitress = Path(sys.executable).with_name("waitress-serve")
    server = Server(
        argv=[str(waitress), f"--listen=127.0.0.1:{port}", "dev_wsgi:application"],
        log_path=tmp_path / "waitress.log",
        env=clean_env(),
        cwd=plain_project,
        base_url=f"http://127.0.0.1:{port}",
    )
    with server.start():
        first = wait_for_body(server.url("/"), "v1 pid=")
        edit(plain_project / "plainversion.py", '"v1"', '"v2"')
        second = wait_for_body(server.url("/"), "v2 pid=")
        assert answer_pid(first.body) == answer_pid(second.body) == server.pid
        server.wait_for_log("restarting process")
        assert_stops_at_ctrl_c(server)


def assert_stops_at_ctrl_c(server: Server) -> None:
    """The re-executed image takes Ctrl-C (and SIGTERM) as the first did: the watcher thread
    that execs blocks the signals, and exec keeps the caller's mask."""
    blocked = signal_mask(server.pid)
    assert not blocked & {signal.SIGINT, signal.SIGTERM}, f"blocked after the reload: {blocked}"
    os.kill(server.pid, signal.SIGINT)
    wait_until(lambda: server.poll() is not None, message="the process to stop at Ctrl-C")


DEV_WSGI = 'from reloader import wrap\n\napplication = wrap("plainapp:application")\n'
# A pre-forking server reloader knows nothing of: the parent binds, forks two workers, and each
# imports the application after the fork and serves on the inherited socket.
PREFORK = """
import os
import socket
import sys
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

port = int(sys.argv[1])
listener = socket.create_server(("127.0.0.1", port))
for _ in range(2):
    if os.fork() == 0:
        from dev_wsgi import application

        print(f"worker {os.getpid()} loaded the application", flush=True)
        server = WSGIServer(("127.0.0.1", port), WSGIRequestHandler, bind_and_activate=False)
        server.socket.close()
        server.socket = listener
        server.server_name, server.server_port = "127.0.0.1", port
        server.setup_environ()
        server.set_app(application)
        server.serve_forever()
while True:
    os.wait()
"""


def test_worker_of_an_unknown_prefork_server_is_never_killed(
    plain_project: Path, tmp_path: Path
) -> None:
    (plain_project / "dev_wsgi.py").write_text(DEV_WSGI)
    (plain_project / "prefork.py").write_text(PREFORK)
    port = free_port()
    server = PreforkServer(
        argv=[sys.executable, "prefork.py", str(port)],
        log_path=tmp_path / "prefork.log",
        env=clean_env(),
        cwd=plain_project,
        base_url=f"http://127.0.0.1:{port}",
        workers=2,
    )
    with server.start():
        workers = server.wait_workers()
        wait_for_body(server.url("/"), "v1 pid=")

        def warnings() -> list[str]:
            return [line for line in server.log().splitlines() if "Not reloading" in line]

        wait_until(lambda: len(warnings()) >= 2, message=server.log_tail)
        for pid in workers:  # one warning per worker, naming what was seen and what to use
            (line,) = lines_naming_pid(warnings(), pid)
            assert f"forked by pid {server.pid}" in line, line
            assert "gunicorn" in line and "mod_wsgi in daemon mode" in line and "uWSGI" in line
        # Each worker warns before it imports the app: a save between the two is no stale answer.
        for pid in workers:
            server.wait_for_log(f"worker {pid} loaded the application")

        edit(plain_project / "plainversion.py", '"v1"', '"v2"')
        with pytest.raises(AssertionError):
            wait_until(lambda: "v2" in get(server.url("/")).body, timeout=QUIET_PERIOD)
        assert server.worker_pids() == workers and server.poll() is None
        assert not restart_lines(server.log())
