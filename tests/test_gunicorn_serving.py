"""gunicorn end-to-end: what serving feels like while reloading (no lost requests, in-flight
requests finish, print() shows up), Django's no-restart reloads, and the off switch."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import socket
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import DEMO_WARM, StartGunicorn
from support import (
    QUIET_PERIOD,
    PreforkServer,
    Response,
    SteadyLoad,
    assert_fresh_everywhere,
    assert_refreshes_never_go_back,
    get,
    get_many,
    group_members,
    restart_lines,
    thread_names,
    wait_for_body,
    wait_until,
    write,
    write_mo,
)

pytestmark = pytest.mark.gunicorn

WORKERS = ["sync", "gthread"]


def save_version(project: Path, version: str) -> None:
    write(project / "pages" / "version.py", f'VERSION = "{version}"\n')


def assert_no_restart_for(seconds: float, server_log: object) -> None:
    with pytest.raises(AssertionError):
        wait_until(lambda: restart_lines(server_log()), timeout=seconds)  # type: ignore[operator]


@pytest.mark.parametrize("worker", [*WORKERS, "gevent"])
def test_no_request_lost_across_reloads(
    demo_server: StartGunicorn, demo_project: Path, worker: str
) -> None:
    server = demo_server(worker)
    stop = threading.Event()
    results: list[tuple[int, str]] = []
    failures: list[str] = []

    def client() -> None:
        # Bounded: at most 2000 requests per client even if the main thread hangs.
        for _ in range(2000):
            if stop.is_set():
                return
            try:
                resp = get(server.url("/version/"), timeout=30)
                results.append((resp.status, resp.body))
            except Exception as exc:
                failures.append(repr(exc))

    clients = [threading.Thread(target=client) for _ in range(3)]
    for thread in clients:
        thread.start()
    try:
        for n in range(2, 5):
            save_version(demo_project, f"v{n}")
            wait_for_body(server.url("/version/"), f"v{n} pid=", status=200)
    finally:
        stop.set()
        for thread in clients:
            thread.join(timeout=60)
    assert not failures, failures[:5]
    bad = [(status, body[:200]) for status, body in results if status != 200]
    assert not bad, bad[:5]
    assert len(results) > 30, "the clients barely ran; the test proves nothing"


@pytest.mark.parametrize("worker", WORKERS)
def test_in_flight_request_completes(
    demo_server: StartGunicorn, demo_project: Path, worker: str
) -> None:
    server = demo_server(worker)
    before = server.log().count("slow: started")
    with ThreadPoolExecutor(1) as pool:
        pending: Future[Response] = pool.submit(get, server.url("/slow/?s=3"), None, 60)
        wait_until(lambda: server.log().count("slow: started") > before)
        save_version(demo_project, "v2")
        # The reload happens while the request sleeps in the view.
        wait_until(lambda: restart_lines(server.log(), "version.py"))
        resp = pending.result(timeout=60)
    assert resp.status == 200
    assert resp.body.startswith("slept 3.0 v1 pid=")
    assert_fresh_everywhere(server, "/version/", "v2 pid=", DEMO_WARM)


@pytest.mark.parametrize("worker", WORKERS)
def test_print_reaches_piped_stdout_promptly(demo_server: StartGunicorn, worker: str) -> None:
    server = demo_server(worker, warm=False)
    assert "PYTHONUNBUFFERED" not in (server.env or {})
    token = uuid.uuid4().hex
    assert get(server.url(f"/print/?t={token}")).body == "ok"
    wait_until(
        lambda: f"PRINT-MARKER {token}" in server.log(),
        timeout=10,
        message="print() output in the server's piped stdout",
    )


@pytest.mark.parametrize("worker", WORKERS)
def test_template_edit_served_without_restart(
    demo_server: StartGunicorn, demo_project: Path, worker: str
) -> None:
    server = demo_server(worker)
    pids = server.worker_pids()
    for resp in get_many(server.url("/hello/"), 16):  # fill the cached template loaders
        assert "HELLO-MARKER template-v1" in resp.body

    template = demo_project / "pages" / "templates" / "pages" / "hello.html"
    # Each worker offers the save to Django when its own watcher sees it, but none answers
    # with the old template once another answered with the new.
    assert_refreshes_never_go_back(server.url("/hello/"), template)
    assert server.worker_pids() == pids, "template edits must not restart workers"
    assert not restart_lines(server.log())


@pytest.mark.parametrize("worker", WORKERS)
def test_translation_file_served_without_restart(
    demo_server: StartGunicorn, demo_project: Path, worker: str
) -> None:
    server = demo_server(worker)
    pids = server.worker_pids()
    for resp in get_many(server.url("/translate/"), 16):
        assert resp.body == "Hello from the demo"

    mo = demo_project / "locale" / "fr" / "LC_MESSAGES" / "django.mo"
    for text in ("Bonjour 1", "Bonjour 2"):  # a new catalogue, then a changed one
        write_mo(mo, {"Hello from the demo": text})
        assert_fresh_everywhere(server, "/translate/", text, None)
    assert server.worker_pids() == pids, ".mo changes must not restart workers"
    assert not restart_lines(server.log())


def test_disabled_reloader_neither_reloads_nor_watches(
    gunicorn: StartGunicorn, demo_project: Path
) -> None:
    """RELOADER_ENABLED=0 runs the app as if unwrapped: same threads as a bare run."""
    common = ("-k", "sync", "-w", "1")
    env = {"DJANGO_SETTINGS_MODULE": "demo.settings"}
    bare = gunicorn(*common, "demo.wsgi:application", cwd=demo_project, env=env, warm=DEMO_WARM)
    off = gunicorn(
        *common, "reloader.wsgi:application", cwd=demo_project, warm=DEMO_WARM,
        env={**env, "RELOADER_APP": "demo.wsgi:application", "RELOADER_ENABLED": "0"},
    )  # fmt: skip
    for server in (bare, off):
        for path in ("/version/", "/hello/", "/translate/", "/lazy/"):
            assert get(server.url(path)).status == 200
    (bare_worker,), (off_worker,) = bare.worker_pids(), off.worker_pids()
    assert sorted(thread_names(off_worker)) == sorted(thread_names(bare_worker))
    assert not any("reload" in name.lower() for name in thread_names(off_worker))

    save_version(demo_project, "v2")
    time.sleep(0)  # nothing to wait for: the negative is checked over QUIET_PERIOD below
    assert_no_restart_for(QUIET_PERIOD, off.log)
    assert off.worker_pids() == [off_worker]
    assert get(off.url("/version/")).body == f"v1 pid={off_worker}"


def _ask_raw(port: int) -> None:
    """One request that the stop may cut: any end is fine."""
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 10) as conn:
        conn.sendall(b"GET /slow?s=0.05 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        conn.recv(100)


def test_ctrl_c_stops_fresh_gthread_workers_at_once(plain_server: StartGunicorn) -> None:
    """gunicorn's gthread worker, left to itself, hangs at a Ctrl-C that comes while it starts
    a request thread (about one stop in four here, during a fresh worker's first burst), and
    the stop then takes the graceful timeout. Every reload makes fresh workers."""
    for attempt in range(8):
        server = plain_server("gthread", "--threads", "32", "--graceful-timeout", "60", warm=False)
        # Each attempt stops the server at another moment of the burst.
        _ctrl_c_during_first_burst(server, after=attempt * 0.004)


def _ctrl_c_during_first_burst(server: PreforkServer, after: float) -> None:
    port = int(server.base_url.rsplit(":", 1)[1])
    burst = [threading.Thread(target=_ask_raw, args=(port,)) for _ in range(32)]
    for thread in burst:
        thread.start()
    time.sleep(after)  # not a wait: where in the burst the Ctrl-C lands
    os.killpg(server.pid, signal.SIGINT)
    wait_until(
        lambda: not group_members(server.pid),
        10,
        message=lambda: (
            f"Ctrl-C {after:.3f} s into the burst, every process gone:\n" + server.log_tail()
        ),
    )
    for thread in burst:
        thread.join(15)


@pytest.mark.parametrize("worker", [*WORKERS, "gevent"])
def test_a_stop_as_a_replacement_boots_ends_the_server_at_once(
    plain_server: StartGunicorn, plain_project: Path, worker: str
) -> None:
    """A stop that reaches a worker between its fork and its own signal handlers goes to the
    arbiter's handler it inherited, and gunicorn alone then waits its graceful timeout for
    that worker. After a save, workers are being forked: a Ctrl-C then is common."""
    server = plain_server(worker, "--graceful-timeout", "60")

    def boots() -> int:
        return server.log().count("Booting worker with pid")

    booted = boots()
    write(plain_project / "plainversion.py", 'VERSION = "v2"\n')
    wait_until(lambda: boots() > booted, interval=0.001, message=server.log_tail)
    os.killpg(server.pid, signal.SIGTERM)
    wait_until(
        lambda: not group_members(server.pid),
        10,
        message=lambda: f"every process gone:\n{server.log_tail()}",
    )


def test_a_stopping_gevent_worker_takes_no_new_connection(plain_server: StartGunicorn) -> None:
    """gunicorn's gevent worker, left to itself, goes on accepting for up to a second after
    its SIGTERM and answers with the code it is stopping for, while warm mode's fresh workers,
    or the peers of a worker that restarted, may answer with the new. With one worker, what
    is asked after the stop must wait for the fresh one."""
    server = plain_server("gevent", "-w", "1")
    (old,) = server.worker_pids()
    port = int(server.base_url.rsplit(":", 1)[1])
    answers: list[tuple[float, str]] = []

    def ask() -> None:
        sent = time.monotonic()
        resp = get(f"http://127.0.0.1:{port}/", timeout=30)
        answers.append((sent, resp.body))

    stopped = time.monotonic()
    os.kill(old, signal.SIGTERM)
    with ThreadPoolExecutor(16) as pool:
        for _ in range(40):  # one every 25 ms: a second and the stop's first moments
            pool.submit(ask)
            time.sleep(0.025)
    assert len(answers) == 40
    # Enough for the signal to arrive and the servers to stop accepting (a greenlet's switch).
    late = [body for sent, body in answers if sent > stopped + 0.1 and f"pid={old}" in body]
    assert not late, f"{len(late)} of {len(answers)} asked after the stop were answered by it"


def test_a_stopping_gevent_worker_answers_what_it_accepted(plain_server: StartGunicorn) -> None:
    """What a gevent worker accepted in the moment of its stop is answered, not dropped: its
    servers stop accepting, and their sockets stay open for the connections still starting."""
    server = plain_server("gevent", "-w", "2")

    def replaced(old: int) -> bool:
        pids = server.worker_pids()
        return len(pids) == 2 and old not in pids

    with SteadyLoad(server.url("/"), clients=8) as load:
        for _ in range(20):
            old = server.worker_pids()[0]
            os.kill(old, signal.SIGTERM)
            wait_until(functools.partial(replaced, old), message=server.log)
    dropped = [a for a in load.answers if a.status != 200]
    assert len(load.answers) > 100, "the clients barely ran; the test proves nothing"
    assert not dropped, f"{len(dropped)} of {len(load.answers)} unanswered: {dropped[:3]}"
