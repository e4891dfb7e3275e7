"""uWSGI end-to-end: the demo project under a real uWSGI master with 2 workers x 4 threads,
in both loading modes (the default, where uWSGI imports the application in the master and
forks, and --lazy-apps), and the shipped deploy_examples/uwsgi configurations."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import DEMO_ENV, DEMO_SRC, DEMO_WARM
from servers import UWSGI_EXAMPLE, Launcher, substitute
from support import (
    ERROR_ID_RE,
    QUIET_PERIOD,
    GiveUp,
    PreforkServer,
    Response,
    assert_fresh_everywhere,
    catches,
    children,
    edit,
    fd_count,
    free_port,
    get,
    group_members,
    lines_naming_pid,
    restart_lines,
    try_get,
    wait_for_body,
    wait_until,
    write,
)
from test_gunicorn_errors import BAD_EDITS, HTML, assert_details

MODES = {"preload": (), "lazy-apps": ("--lazy-apps",)}


def version_source(version: str) -> str:
    return f'VERSION = "{version}"\n'


@pytest.fixture
def launch() -> Iterator[Launcher]:
    with Launcher() as launcher:
        yield launcher


StartDemo = Callable[..., tuple[PreforkServer, Path]]


@pytest.fixture
def demo_uwsgi(launch: Launcher) -> StartDemo:
    """``start(mode, *more_args, env={...})``: a copy of the demo under
    ``uwsgi --master --processes 2 --threads 4 --module reloader.wsgi:application`` on a free
    port; returns the server, with every worker warmed, and the project."""

    def start(
        mode: str,
        *args: str,
        env: dict[str, str] | None = None,
        warm: bool = True,
        prepare: Callable[[Path], None] | None = None,
    ):
        project = launch.copy(DEMO_SRC)
        if prepare is not None:
            prepare(project)
        port = free_port()
        env_args = [f"--env={k}={v}" for k, v in {**DEMO_ENV, **(env or {})}.items()]
        server = launch.uwsgi(
            "--master", "--processes", "2", "--threads", "4", "--die-on-term", "--need-app",
            "--http-socket", f"127.0.0.1:{port}", "--module", "reloader.wsgi:application",
            *env_args, *MODES[mode], *args,
            cwd=project, base_url=f"http://127.0.0.1:{port}",
        )  # fmt: skip
        if warm:
            server.warm(DEMO_WARM)
        return server, project

    return start


def assert_one_restart_per_worker(server: PreforkServer, old_pids: list[int], name: str) -> None:
    lines = restart_lines(server.log(), name)
    for pid in old_pids:
        assert len(lines_naming_pid(lines, pid)) == 1, "\n".join(lines)
    assert len(lines) == len(old_pids), "\n".join(lines)


def _add_exit_markers(project: Path) -> None:
    """Each worker logs its atexit callbacks, and the interpreter's teardown if it runs one
    (which frees the module's globals)."""
    with (project / "pages" / "apps.py").open("a") as apps:
        apps.write(
            "\n\nimport atexit\nimport os\n\n\n"
            "class _TornDown:\n"
            "    def __del__(self):\n"
            '        os.write(2, b"TORN-DOWN pid=%d\\n" % os.getpid())\n\n\n'
            "_torn_down = _TornDown()\n"
            'atexit.register(lambda: os.write(2, b"ATEXIT pid=%d\\n" % os.getpid()))\n'
        )


@pytest.mark.parametrize("mode", MODES)
def test_save_reloads_every_worker_and_keeps_the_master(demo_uwsgi: StartDemo, mode: str) -> None:
    server, project = demo_uwsgi(mode, prepare=_add_exit_markers)
    old_pids = server.worker_pids()
    assert len(old_pids) == 2
    if mode == "preload":  # the master holds reloader only; each worker loads the project
        assert "is loaded in each worker, not in the master" in server.log()

    write(project / "pages" / "version.py", version_source("v2"))
    first = assert_fresh_everywhere(server, "/version/", "v2 pid=", DEMO_WARM)
    assert first.content_type.startswith("text/plain")
    assert not set(server.worker_pids()) & set(old_pids)
    assert_one_restart_per_worker(server, old_pids, "version.py")
    # Each worker stopped by itself; the instance was never reloaded (no exec either).
    assert "Gracefully killing worker" in server.log()
    assert "graceful reload" not in server.log().lower()
    assert server.poll() is None
    # Where the master imported the wrapper, a worker's exit wakes it (uwsgi_wake); the workers
    # it forked since keep the default action for the application's own children.
    assert catches(server.pid, signal.SIGCHLD) == (mode == "preload")
    assert not any(catches(pid, signal.SIGCHLD) for pid in server.worker_pids())
    # A worker we restart runs its atexit callbacks and ends without the teardown.
    for pid in old_pids:
        server.wait_for_log(f"ATEXIT pid={pid}\n")
    assert "TORN-DOWN" not in server.log(), server.log_tail()


@pytest.mark.parametrize("mode", MODES)
def test_no_request_lost_and_in_flight_ones_finish(demo_uwsgi: StartDemo, mode: str) -> None:
    server, project = demo_uwsgi(mode)
    failures: list[str] = []
    answers = 0
    stop = threading.Event()

    def load() -> None:
        nonlocal answers
        while not stop.is_set():
            resp = try_get(server.url("/version/"))
            if resp is None or resp.status != 200:
                failures.append("refused" if resp is None else f"{resp.status} {resp.body[:200]}")
            answers += 1
            time.sleep(0.01)

    started = server.log().count("slow: started pid=")
    with ThreadPoolExecutor(5) as pool:
        loaders = [pool.submit(load) for _ in range(4)]
        slow = pool.submit(get, server.url("/slow/?s=2"))
        wait_until(lambda: server.log().count("slow: started pid=") > started)
        for n in range(2, 5):
            write(project / "pages" / "version.py", version_source(f"v{n}"))
            assert_fresh_everywhere(server, "/version/", f"v{n} pid=", DEMO_WARM)
        stop.set()
        for loader in loaders:
            loader.result()
        in_flight = slow.result()
    # The request running when its worker was told to stop finished, with the old code.
    assert in_flight.status == 200 and in_flight.body.startswith("slept 2.0 v1 pid="), in_flight
    assert answers > 50
    assert not failures, failures[:10]


@pytest.mark.parametrize(
    ("mode", "case"),
    [
        ("preload", "syntax-at-load"),
        ("preload", "name-at-load"),
        ("preload", "settings"),
        ("lazy-apps", "name-at-load"),
    ],
)
def test_bad_edit_shows_the_error_and_the_fix_recovers(
    demo_uwsgi: StartDemo, mode: str, case: str
) -> None:
    edit_ = BAD_EDITS[case]
    server, project = demo_uwsgi(mode)
    original = edit_.apply(project)

    def broken() -> Response | None:
        server.check_alive()
        resp = get(server.url("/version/"), headers=HTML)
        return resp if resp.status == 500 else None

    page = wait_until(broken, message=server.log_tail)
    assert_details(page, edit_, "text/html")
    assert ERROR_ID_RE.fullmatch(page.headers.get("x-reloader-error-id", "")), page.headers
    assert server.poll() is None and len(server.wait_workers()) == 2

    write(project / edit_.path, original.replace('"v1"', '"v2"'))
    assert_fresh_everywhere(server, "/version/", "v1 pid=", DEMO_WARM)


@pytest.mark.parametrize("logto", [False, True], ids=["output", "logto"])
def test_print_reaches_the_log(demo_uwsgi: StartDemo, launch: Launcher, logto: bool) -> None:
    """In uWSGI's output (a pipe here), or in the --logto file."""
    logfile = launch.root / "uwsgi.log"
    server, project = demo_uwsgi(
        "preload", *(("--logto", str(logfile)) if logto else ()), warm=False
    )

    def log() -> str:
        return logfile.read_text() if logto else server.log()

    token = f"t{time.monotonic_ns()}"
    assert get(server.url(f"/print/?t={token}")).body == "ok"
    wait_until(lambda: f"PRINT-MARKER {token}" in log(), timeout=10)
    write(project / "pages" / "version.py", version_source("v2"))
    wait_for_body(server.url("/version/"), "v2 pid=")
    wait_until(lambda: restart_lines(log(), "version.py"), timeout=10)


def test_without_master_it_serves_and_says_what_to_add(launch: Launcher) -> None:
    """A worker that stopped would never come back: the wrapper does not reload, and the server
    it runs in survives a save."""
    project = launch.copy(DEMO_SRC)
    port = free_port()
    server = launch.uwsgi(
        "--processes", "1", "--threads", "4", "--die-on-term", "--need-app",
        "--http-socket", f"127.0.0.1:{port}", "--module", "reloader.wsgi:application",
        *[f"--env={k}={v}" for k, v in DEMO_ENV.items()],
        cwd=project, workers=0, base_url=f"http://127.0.0.1:{port}",
    )  # fmt: skip
    assert get(server.url("/version/")).body.startswith("v1 pid=")
    assert "Add --master" in server.wait_for_log("without its master")
    write(project / "pages" / "version.py", version_source("v2"))
    with pytest.raises(AssertionError):
        wait_until(lambda: "v2" in get(server.url("/version/")).body, timeout=QUIET_PERIOD)
    assert server.poll() is None and not restart_lines(server.log())


def test_template_edit_needs_no_restart(demo_uwsgi: StartDemo) -> None:
    server, project = demo_uwsgi("preload")
    pids = server.worker_pids()
    server.warm("/hello/")
    edit(project / "pages" / "templates" / "pages" / "hello.html", "template-v1", "template-v2")

    def fresh(resp: Response) -> None:
        if resp.status != 200 or "template-v2" not in resp.body:
            raise GiveUp(f"stale template: {resp.status} {resp.body[:300]!r}")

    wait_for_body(server.url("/hello/"), "template-v2", status=200)
    assert server.warm("/hello/", check=fresh) == set(pids)
    assert server.worker_pids() == pids
    assert not restart_lines(server.log()), server.log_tail()


@pytest.mark.parametrize("mode", MODES)
def test_many_reloads_leave_nothing_behind(demo_uwsgi: StartDemo, mode: str) -> None:
    server, project = demo_uwsgi(mode, warm=False)
    version = project / "pages" / "version.py"

    def reload(n: int) -> None:
        write(version, version_source(f"v{n}"))
        wait_for_body(server.url("/version/"), f"v{n} pid=", status=200)
        # Both workers replaced before the next save (the master forks one per second).
        wait_until(lambda: len(server.worker_pids()) == 2, message=server.log_tail)

    reload(2)
    master_fds = fd_count(server.pid)
    for n in range(3, 13):
        reload(n)
    assert fd_count(server.pid) <= master_fds + 1, "the master leaks descriptors per reload"
    # Only the master and its two workers: no zombie, no stray process.
    assert len(children(server.pid)) == 2
    assert len(server.worker_pids()) == 2 and server.poll() is None
    # Both serving before the teardown's stop: see Known limits on a worker's first moments.
    server.warm(DEMO_WARM)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
@pytest.mark.parametrize("booting", [False, True], ids=["serving", "booting"])
def test_a_stop_right_after_a_save_ends_the_server(
    demo_uwsgi: StartDemo, signum: int, booting: bool
) -> None:
    """Ctrl-C in the terminal (SIGINT to the whole process group) or a stop (SIGTERM, with
    --die-on-term) just after a save, while the fresh workers boot or once they serve: the
    master waits for every worker, so one that outlives the signal would hold the server up
    for a minute (uWSGI's worker-reload-mercy)."""
    # Both workers loaded before the save: one still loading would read the new module and
    # have no reason to restart.
    server, project = demo_uwsgi("preload")
    version = project / "pages" / "version.py"
    if booting:  # a boot that imports this module lasts long enough to be caught in it
        old = set(server.worker_pids())
        write(version, f"import time\ntime.sleep(4)\n{version_source('v2')}")
        wait_until(lambda: len(set(server.worker_pids()) - old) == 2, message=server.log_tail)
    else:
        write(version, version_source("v2"))
        wait_for_body(server.url("/version/"), "v2 pid=")
    started = time.monotonic()
    os.killpg(server.pid, signum)
    wait_until(lambda: not group_members(server.pid), timeout=20, message=server.log_tail)
    assert time.monotonic() - started < 10, server.log_tail()


def _add_thread_signal_view(project: Path) -> None:
    (project / "pages" / "signal_thread.py").write_text(
        "import signal\nimport threading\nimport time\n\n"
        "from django.http import HttpResponse\n\n\n"
        "def _signalled():\n"
        "    # Open to signals, as a request thread uWSGI just created is before it runs;\n"
        "    # once the answer is out (uWSGI skips its exit steps in a busy worker).\n"
        "    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})\n"
        "    time.sleep(1)\n"
        "    signal.pthread_kill(threading.get_ident(), signal.SIGINT)\n\n\n"
        "def signal_thread(request):\n"
        "    threading.Thread(target=_signalled).start()\n"
        '    return HttpResponse("signalled")\n'
    )
    with (project / "pages" / "urls.py").open("a") as urls:
        urls.write(
            "\nfrom .signal_thread import signal_thread\n\n"
            "urlpatterns.append(path('signal-thread/', signal_thread))\n"
        )


def test_a_stop_signal_taken_by_another_thread_ends_the_worker(demo_uwsgi: StartDemo) -> None:
    """uWSGI's stop handler, run in a thread other than the worker's main one, calls exit()
    there; Python's finalisation would wait for the main thread, which never ends."""
    server, _ = demo_uwsgi("preload", prepare=_add_thread_signal_view)
    before = set(server.worker_pids())
    assert get(server.url("/signal-thread/")).body == "signalled"
    wait_until(
        lambda: len(before - set(server.worker_pids())) == 1,
        timeout=15,
        message=lambda: f"the signalled worker to exit:\n{server.log_tail()}",
    )
    server.wait_workers()
    server.warm(DEMO_WARM)


def test_bad_option_fails_startup(launch: Launcher) -> None:
    project = launch.copy(DEMO_SRC)
    port = free_port()
    server = launch.uwsgi(
        "--ini", str(UWSGI_EXAMPLE / "uwsgi.ini"), "--http-socket", f"127.0.0.1:{port}",
        "--env", "RELOADER_ENABLED=maybe",
        cwd=project, workers=0, ready=None,
    )  # fmt: skip
    assert server.wait_exit() != 0
    assert "RELOADER_ENABLED='maybe'" in server.log(), server.log_tail()


def shipped_ini(launch: Launcher, name: str, replacements: dict[str, str]) -> Path:
    """deploy_examples/uwsgi/<name> with only ``replacements`` (port, socket) applied."""
    source = UWSGI_EXAMPLE / name
    copy = launch.directory(f"ini-{name}") / name
    copy.write_text(substitute(source.read_text(), replacements, str(source)))
    return copy


def test_shipped_development_ini(launch: Launcher) -> None:
    project = launch.copy(DEMO_SRC)
    port = free_port()
    ini = shipped_ini(
        launch, "uwsgi.ini", {r"^http-socket = .*$": f"http-socket = 127.0.0.1:{port}"}
    )
    server = launch.uwsgi("--ini", str(ini), cwd=project, base_url=f"http://127.0.0.1:{port}")
    server.warm(DEMO_WARM)
    old_pids = server.worker_pids()
    write(project / "pages" / "version.py", version_source("v2"))
    assert_fresh_everywhere(server, "/version/", "v2 pid=", DEMO_WARM)
    assert not set(server.worker_pids()) & set(old_pids)


def test_staging_nginx_uwsgi_hides_error_details(launch: Launcher) -> None:
    project = launch.copy(DEMO_SRC)
    socket = launch.directory("run") / "uwsgi.sock"
    ini = shipped_ini(
        launch, "staging.ini", {r"^socket = /run/demo/uwsgi\.sock$": f"socket = {socket}"}
    )
    server = launch.uwsgi("--ini", str(ini), cwd=project, socket=socket)
    port = free_port()
    source = UWSGI_EXAMPLE / "nginx.conf"
    site = substitute(
        source.read_text(),
        {
            r"unix:/run/demo/uwsgi\.sock": f"unix:{socket}",
            r"listen 80;": f"listen 127.0.0.1:{port};",
            # Relative to nginx's configuration directory, which the test's nginx moves.
            r"include uwsgi_params;": "include /etc/nginx/uwsgi_params;",
        },
        str(source),
    )
    nginx = launch.nginx(site, port)
    server.base_url = nginx.base_url
    server.warm(DEMO_WARM)

    write(project / "pages" / "version.py", version_source("v2"))
    assert_fresh_everywhere(server, "/version/", "v2 pid=", DEMO_WARM)

    apps = project / "pages" / "apps.py"
    edit(apps, "        pass", '        raise RuntimeError("ready-broken-on-purpose")')
    page = wait_for_body(server.url("/version/"), "Error id:", status=500, headers=HTML)
    assert page.content_type.startswith("text/plain"), page.headers
    for secret in ("ready-broken-on-purpose", "Traceback", "apps.py", str(project)):
        assert secret not in page.body, f"{secret!r} leaked through nginx:\n{page.body}"
    error_id = page.headers["x-reloader-error-id"]
    log = server.wait_for_log(error_id)
    assert "ready-broken-on-purpose" in log[log.index(error_id) :][:4000]

    edit(apps, '        raise RuntimeError("ready-broken-on-purpose")', "        pass")
    assert_fresh_everywhere(server, "/version/", "v2 pid=", DEMO_WARM)
