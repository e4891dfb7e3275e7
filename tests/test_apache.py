"""Apache + mod_wsgi end-to-end: deploy_examples/apache as shipped (only ports and paths
substituted), run by Debian's apache2 under deploy_examples/apache/standalone.conf.

The vhost runs 2 daemon processes x 4 threads. Everything mod_wsgi says (print() output,
tracebacks, daemon starts and stops) goes to the error log, which ``server.log()`` includes.
"""

from __future__ import annotations

import json
import pwd
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import DEMO_SRC, DEMO_WARM
from servers import APACHE_EXAMPLE, ApacheServer, Launcher, demo_vhost, run_user_group
from support import (
    ERROR_ID_RE,
    QUIET_PERIOD,
    EventStream,
    GiveUp,
    Response,
    assert_fresh_everywhere,
    assert_refreshes_never_go_back,
    edit,
    free_port,
    get,
    get_many,
    lines_naming_pid,
    make_live_pinging_slowly,
    restart_lines,
    stream_holder,
    thread_names,
    wait_for_body,
    wait_until,
    write,
)

from benchmarks.live_reload import LIVE_SETTINGS

# mod_wsgi's default shutdown-timeout: how long a daemon process told to stop waits for its
# requests (and its threads) before it is killed.
SHUTDOWN_TIMEOUT = 5.0
BROKEN = "ready-broken-on-purpose"


@dataclass
class Site:
    server: ApacheServer
    project: Path  # the demo project copy, edited by the tests
    wsgi_dir: Path  # the copy of deploy_examples/apache holding dev.wsgi

    def url(self, path: str) -> str:
        return self.server.url(path)


StartSite = Callable[..., Site]


@pytest.fixture
def launch() -> Iterator[Launcher]:
    with Launcher() as launcher:
        yield launcher


@pytest.fixture
def apache_site(launch: Launcher) -> StartSite:
    """``start(embedded=False, script_suffix="", ready=..., warm=True, prepare=None)``: Apache
    serving a copy of the demo project through a copy of the shipped vhost and dev.wsgi.

    ``script_suffix`` is appended to dev.wsgi (to make the script itself fail); ``warm``
    makes every daemon process serve a request, so that each has imported the views;
    ``prepare`` is called with the project's copy before Apache starts.
    """

    def start(
        *,
        embedded: bool = False,
        script_suffix: str = "",
        ready: str | None = "/version/",
        warm: bool = True,
        prepare: Callable[[Path], object] | None = None,
    ) -> Site:
        project = launch.copy(DEMO_SRC)
        if prepare is not None:
            prepare(project)
        wsgi_dir = launch.copy(APACHE_EXAMPLE)
        if script_suffix:
            script = wsgi_dir / "dev.wsgi"
            script.write_text(script.read_text() + script_suffix)
        port = free_port()
        vhost = demo_vhost(project, wsgi_dir, port, embedded=embedded)
        server = launch.apache(vhost, port, ready=ready)
        if warm and not embedded:
            server.warm(DEMO_WARM)
        return Site(server, project, wsgi_dir)

    return start


def version_source(version: str) -> str:
    return f'VERSION = "{version}"\n'


def break_app(project: Path) -> None:
    """Make django.setup() fail, i.e. the import of the target itself (not a view)."""
    edit(project / "pages" / "apps.py", "        pass", f'        raise RuntimeError("{BROKEN}")')


def fix_app(project: Path) -> None:
    edit(project / "pages" / "apps.py", f'        raise RuntimeError("{BROKEN}")', "        pass")


def error_id(resp: Response) -> str:
    header = resp.headers.get("x-reloader-error-id", "")
    assert ERROR_ID_RE.fullmatch(header), f"no X-Reloader-Error-Id header: {resp.headers}"
    return header


def uid_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^Uid:\s+(\d+)", status, re.M)[1])  # type: ignore[index]


# Appended to dev.wsgi: what a user registers to run at exit.
ATEXIT_SCRIPT_SUFFIX = """
import atexit
import os

# Deliberately no flush: a daemon process that restarts must still flush on its way out.
atexit.register(lambda: print(f"ATEXIT-MARKER pid={os.getpid()}"))
"""
# mod_wsgi's lines, "[pid P:tid T] ...": the script loaded by a daemon process, and the end of
# the interpreter's teardown in one.
SCRIPT_LOADED = re.compile(r"\[pid (\d+):tid (\d+)\].*Loading WSGI script")
TEARDOWN_DONE = re.compile(r"\[pid (\d+):tid \d+\].*Python runtime has shut down")


def test_save_restarts_every_daemon_process_gracefully(apache_site: StartSite) -> None:
    site = apache_site(script_suffix=ATEXIT_SCRIPT_SUFFIX)
    server = site.server
    old_pids = server.worker_pids()
    assert len(old_pids) == 2
    # Never root, even when the tests are: Apache's User (www-data) or ourselves.
    expected_uid = pwd.getpwnam(run_user_group()[0]).pw_uid
    assert {uid_of(pid) for pid in old_pids} == {expected_uid}

    started = server.log().count("slow: started pid=")  # the warm-up's slow requests
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(get, site.url("/slow/?s=3"))
        wait_until(
            lambda: server.log().count("slow: started pid=") > started,
            message=lambda: f"/slow/ to start:\n{server.log_tail()}",
        )
        saved = time.monotonic()
        write(site.project / "pages" / "version.py", version_source("v2"))
        wait_for_body(site.url("/version/"), "v2 pid=", status=200)
        save_to_fresh = time.monotonic() - saved
        # The request running when its process was told to restart finishes, with old code.
        in_flight = slow.result()
    assert in_flight.status == 200, in_flight.body[:2000]
    assert in_flight.body.startswith("slept 3.0 v1 pid="), in_flight.body

    # From the first fresh answer on, nothing stale: the old processes took no new request.
    assert_fresh_everywhere(server, "/version/", "v2 pid=", DEMO_WARM)
    assert not set(server.worker_pids()) & set(old_pids)
    lines = restart_lines(server.log(), "version.py")
    for pid in old_pids:
        assert len(lines_naming_pid(lines, pid)) == 1, "\n".join(lines)

    # Our watcher thread must not hold a process up until mod_wsgi gives up on it.
    assert "Shutdown timeout expired" not in server.log()
    assert save_to_fresh < SHUTDOWN_TIMEOUT, f"reload took {save_to_fresh:.1f}s"

    # The old processes ended once their requests were done, without the interpreter's
    # teardown, but ran what was registered to run at exit and flushed what it printed.
    for pid in old_pids:
        server.wait_for_log(f"ATEXIT-MARKER pid={pid}")
    assert not {int(pid) for pid in TEARDOWN_DONE.findall(server.log())} & set(old_pids)

    # The vhost preloads dev.wsgi: each new process loaded it in its main thread as it
    # started, not in a request thread on its first request.
    loads = {int(pid): int(tid) for pid, tid in SCRIPT_LOADED.findall(server.log())}
    for pid in server.worker_pids():
        assert loads.get(pid) == pid, f"process {pid} loaded dev.wsgi in thread {loads.get(pid)}"


def test_broken_import_shows_details_locally_and_recovers(apache_site: StartSite) -> None:
    site = apache_site()
    break_app(site.project)

    html = wait_for_body(site.url("/version/"), BROKEN, status=500, headers={"Accept": "text/html"})
    assert html.content_type.startswith("text/html")
    assert "RuntimeError" in html.body and "apps.py" in html.body
    error_id(html)
    # Every daemon process fails the same way, in plain text for non-browser clients.
    for resp in get_many(site.url("/version/"), 16):
        assert resp.status == 500 and BROKEN in resp.body, resp.body[:500]
        assert resp.content_type.startswith("text/plain")
        error_id(resp)

    fix_app(site.project)
    assert_fresh_everywhere(site.server, "/version/", "v1 pid=", DEMO_WARM)


def test_print_goes_to_the_error_log(apache_site: StartSite) -> None:
    site = apache_site(warm=False)
    token = f"t{time.monotonic_ns()}"
    assert get(site.url(f"/print/?t={token}")).body == "ok"
    log = site.server.wait_for_log(f"PRINT-MARKER {token}", timeout=10)
    line = next(line for line in log.splitlines() if token in line)
    assert "[wsgi:error]" in line, line  # mod_wsgi's prefix for the process's stdout


def test_template_edit_needs_no_restart(apache_site: StartSite) -> None:
    site = apache_site()
    server = site.server
    pids = server.worker_pids()
    server.warm("/hello/")  # each process renders, so has the template cached
    template = site.project / "pages" / "templates" / "pages" / "hello.html"
    # Each daemon process offers the save to Django when its own watcher sees it, but none
    # answers with the old template once another answered with the new.
    assert_refreshes_never_go_back(site.url("/hello/"), template)
    assert server.warm("/hello/") == set(pids)
    assert server.worker_pids() == pids
    assert not restart_lines(server.log()), server.log_tail()


def test_embedded_mode_warns_once_and_serves_without_reloading(
    apache_site: StartSite,
) -> None:
    site = apache_site(embedded=True)
    server = site.server
    assert server.worker_pids() == [], "no daemon processes expected in embedded mode"
    first = get(site.url("/version/"))
    assert first.status == 200 and first.body.startswith("v1 pid="), first.body[:500]

    warnings = [
        line
        for line in server.wait_for_log("embedded mode").splitlines()
        if "embedded mode" in line and "WSGIDaemonProcess" in line
    ]
    assert warnings, server.log_tail()
    by_pid: dict[str, int] = {}
    for line in warnings:
        pid = re.search(r"\[pid (\d+)", line)
        assert pid, line
        by_pid[pid[1]] = by_pid.get(pid[1], 0) + 1
    assert all(count == 1 for count in by_pid.values()), "\n".join(warnings)

    write(site.project / "pages" / "version.py", version_source("v2"))
    with pytest.raises(AssertionError):
        wait_until(lambda: "v2" in get(site.url("/version/")).body, timeout=QUIET_PERIOD)
    assert not restart_lines(server.log())


# Appended to the shipped dev.wsgi: the script raises after wrap() while FAIL exists next
# to it. mod_wsgi then answers 500 and runs the whole script again on the next request.
FAILING_SCRIPT_SUFFIX = """
from pathlib import Path

if Path(__file__).with_name("FAIL").exists():
    raise RuntimeError("dev.wsgi fails after wrap() on purpose")
"""
# mod_wsgi 5+ logs "[pid P:tid T] ... WSGI0109: Unable to execute Python script file";
# older ones "mod_wsgi (pid=P): Failed to exec Python script file".
SCRIPT_FAILURE = re.compile(
    r"\[pid (\d+):tid \d+\].*(?:Unable to execute|Failed to exec) Python script file"
)


def settled_thread_count(pid: int) -> int:
    """The number of threads of ``pid`` once it stops changing (a watcher starts async)."""
    counts: list[int] = []

    def stable() -> bool:
        counts.append(len(thread_names(pid)))
        return len(counts) >= 3 and counts[-1] == counts[-2] == counts[-3]

    wait_until(stable, timeout=15, interval=0.3, message=lambda: f"threads of {pid}: {counts}")
    return counts[-1]


def test_rerun_of_a_failing_script_starts_no_second_watcher(apache_site: StartSite) -> None:
    site = apache_site(script_suffix=FAILING_SCRIPT_SUFFIX, ready=None, warm=False)
    (site.wsgi_dir / "FAIL").write_text("")
    server = site.server
    wait_until(lambda: len(server.worker_pids()) == 2, message=server.log_tail)
    seen: dict[int, tuple[int, int]] = {}  # pid -> (runs, threads) when first seen failing

    def failures() -> dict[int, int]:
        pids = [int(pid) for pid in SCRIPT_FAILURE.findall(server.log())]
        return {pid: pids.count(pid) for pid in set(pids)}

    def rerun_twice_more() -> int | None:
        resp = get(site.url("/version/"))
        if resp.status != 500:
            raise GiveUp(f"expected mod_wsgi's 500, got {resp.status}: {resp.body[:500]}")
        for pid, runs in failures().items():
            if pid not in seen:
                seen[pid] = (runs, settled_thread_count(pid))
            elif runs >= seen[pid][0] + 2:
                return pid
        return None

    pid = wait_until(rerun_twice_more, interval=0, message=server.log_tail)
    threads = seen[pid][1]
    assert settled_thread_count(pid) == threads, "a re-run of the script added threads"

    # The script succeeds from now on: the one watcher started by the first run still works.
    (site.wsgi_dir / "FAIL").unlink()
    server.warm(DEMO_WARM)
    assert settled_thread_count(pid) == threads
    old_pids = server.worker_pids()
    write(site.project / "pages" / "version.py", version_source("v2"))
    assert_fresh_everywhere(server, "/version/", "v2 pid=", DEMO_WARM)
    lines = restart_lines(server.log(), "version.py")
    for old in old_pids:
        assert len(lines_naming_pid(lines, old)) == 1, "\n".join(lines)


def test_a_save_ends_open_streams_instead_of_waiting_for_the_shutdown_timeout(
    apache_site: StartSite,
) -> None:
    site = apache_site()
    server = site.server
    streams = [EventStream(site.url("/stream/")) for _ in range(2)]
    try:
        pids = {int(s.wait_events()[0].rsplit("pid=", 1)[1]) for s in streams}
        write(site.project / "pages" / "version.py", version_source("v2"))
        for stream in streams:
            assert stream.ended.wait(60), f"a stream is still open:\n{server.log_tail()}"
        assert_fresh_everywhere(server, "/version/", "v2 pid=", DEMO_WARM)
        # Ended by the wrapper, which ran the application's close(): a process killed at
        # mod_wsgi's shutdown-timeout runs no finally block.
        wait_until(
            lambda: all(f"STREAM-CLOSED pid={pid}" in server.log() for pid in pids),
            message=lambda: f"each stream's close() to run:\n{server.log_tail()}",
        )
        assert "timeout expired" not in server.log().lower(), server.log_tail()
    finally:
        for stream in streams:
            stream.close()


def serve_live_pinging_slowly(project: Path) -> None:
    make_live_pinging_slowly(project)
    edit(project / "demo" / "wsgi.py", '"demo.settings"', f'"{LIVE_SETTINGS}"')


def test_a_django_browser_reload_stream_lets_its_daemon_process_go_at_once(
    apache_site: StartSite,
) -> None:
    site = apache_site(prepare=serve_live_pinging_slowly)
    server = site.server
    with EventStream(site.url("/__reload__/events/")) as stream:
        stream.wait_events()
        holder = stream_holder(server.log())
        write(site.project / "pages" / "version.py", version_source("v2"))
        # Under mod_wsgi a stream ends once it yields: at once, its flag raised, where its
        # next ping would have come after mod_wsgi's shutdown-timeout had killed the process.
        assert stream.ended.wait(60), server.log_tail()
        # Told to reload, the tab would reload once more on its new stream's new process id.
        assert "reload" not in [json.loads(e)["type"] for e in stream.events], stream.events
        wait_until(
            lambda: holder not in server.worker_pids(),
            message=lambda: f"the daemon process holding the stream to exit:\n{server.log_tail()}",
        )
    assert_fresh_everywhere(server, "/version/", "v2 pid=", DEMO_WARM)
    assert "timeout expired" not in server.log().lower(), server.log_tail()
