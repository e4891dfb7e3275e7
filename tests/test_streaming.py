"""Long-lived responses at a reload, under real gunicorn: an endless stream ends at once so its
client reconnects to fresh code; a request that never finishes is cut after the grace; with one
worker, its replacement serves while it finishes a slow request; Django's template refresh is
offered once per save.

The servers get a graceful timeout far longer than the tests wait, so a stream that ends in
time can only have been ended by the wrapper, not by gunicorn giving up on it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from conftest import DEMO_ENV, DEMO_WARM, WORKER_ARGS, StartGunicorn
from support import (
    QUIET_PERIOD,
    EventStream,
    PreforkServer,
    Response,
    answer_pid,
    assert_fresh_everywhere,
    edit,
    group_members,
    make_live_pinging_slowly,
    restart_lines,
    stream_holder,
    stream_holders,
    try_get,
    wait_for_body,
    wait_until,
    write,
)

from benchmarks.live_reload import LIVE_SETTINGS, make_live

pytestmark = pytest.mark.gunicorn

GRACEFUL_TIMEOUT = "120"
"""gunicorn's own bound: a stream still open when the tests give up was not ended by us."""
ENDED_WITHIN = 30.0
"""Far below the bounds above, generous for a loaded machine: a stream ends within a second."""
MODES = {
    "per-worker": ("reloader.wsgi:application",),
    "warm": ("-c", "python:reloader.gunicorn"),
}


def start(
    gunicorn: StartGunicorn, project: Path, worker: str, mode: str, **env: str
) -> PreforkServer:
    return gunicorn(
        *WORKER_ARGS[worker],
        "--graceful-timeout", GRACEFUL_TIMEOUT,
        "--timeout", GRACEFUL_TIMEOUT,
        *MODES[mode],
        cwd=project,
        env={**DEMO_ENV, "RELOADER_GRACE": "60", **env},
        warm=DEMO_WARM,
        workers=2,
        helpers=("reloader.warm",),
    )  # fmt: skip


def start_live(gunicorn: StartGunicorn, project: Path, mode: str) -> PreforkServer:
    """gthread workers serving the demo with django-browser-reload (see `make_live`)."""
    return start(gunicorn, project, "gthread", mode, DJANGO_SETTINGS_MODULE=LIVE_SETTINGS)


def stream_pid(stream: EventStream) -> int:
    return answer_pid(stream.wait_events()[0])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("worker", ["sync", "gthread"])
def test_a_save_ends_open_streams_and_every_worker_serves_fresh_code(
    gunicorn: StartGunicorn, demo_project: Path, worker: str, mode: str
) -> None:
    server = start(gunicorn, demo_project, worker, mode)
    # Two streams, as two browsers hold them: with sync workers, every worker is held.
    streams = [EventStream(server.url("/stream/")) for _ in range(2)]
    try:
        pids = {stream_pid(s) for s in streams}
        if worker == "sync":
            assert pids == set(server.worker_pids()), "each sync worker holds one stream"
        write(demo_project / "pages" / "version.py", 'VERSION = "v2"\n')

        for stream in streams:
            assert stream.ended.wait(ENDED_WITHIN), (
                f"a stream is still open {ENDED_WITHIN} s after the save:\n{server.log_tail()}"
            )
        assert_fresh_everywhere(server, "/version/", "v2 pid=", DEMO_WARM)
        # The application's close() ran: the generator's finally block printed.
        log = server.log()
        for pid in pids:
            assert f"STREAM-CLOSED pid={pid}" in log, log
        wait_until(
            lambda: not pids & set(server.worker_pids()),
            message=lambda: f"the workers that held streams to exit:\n{server.log_tail()}",
        )
        assert "still running" not in log, "nothing had to be cut"
    finally:
        for stream in streams:
            stream.close()
    # A stream opened now is served by fresh code.
    with EventStream(server.url("/stream/")) as fresh:
        assert " v2 pid=" in fresh.wait_events()[0]


@pytest.mark.parametrize("mode", MODES)
def test_a_request_that_never_finishes_is_cut_after_the_grace(
    gunicorn: StartGunicorn, demo_project: Path, mode: str
) -> None:
    # A thread the application started and never ends keeps a plain Python exit waiting.
    (demo_project / "pages" / "stuck.py").write_text(
        "import os\nimport threading\nimport time\n\n"
        "from django.http import HttpResponse\n\n\n"
        "def stuck(request):\n"
        "    threading.Thread(target=time.sleep, args=(3600,)).start()\n"
        '    return HttpResponse(f"thread started pid={os.getpid()}")\n'
    )
    with (demo_project / "pages" / "urls.py").open("a") as urls:
        urls.write("\nfrom .stuck import stuck\n\nurlpatterns.append(path('stuck/', stuck))\n")
    server = start(gunicorn, demo_project, "gthread", mode, RELOADER_GRACE="2")
    # A thread in every worker, so that one of them has nothing else left running.
    threaded: set[int] = set()

    def every_worker_started_one() -> bool:
        started = try_get(server.url("/stuck/"))
        assert started is not None and started.status == 200, started
        threaded.add(answer_pid(started.body))
        return threaded == set(server.worker_pids())

    wait_until(every_worker_started_one, message="a thread started in every worker")
    slow = threading.Thread(target=try_get, args=(server.url("/slow/?s=600"), None, 600))
    slow.daemon = True
    slow.start()
    server.wait_for_log("slow: started")
    old = set(server.worker_pids())

    write(demo_project / "pages" / "version.py", 'VERSION = "v2"\n')
    assert_fresh_everywhere(server, "/version/", "v2 pid=", DEMO_WARM)
    wait_until(
        lambda: not old & set(server.worker_pids()),
        ENDED_WITHIN,
        message=lambda: f"every old worker to exit within the grace:\n{server.log_tail()}",
    )
    log = server.log()
    cut = [line for line in log.splitlines() if "still running" in line]
    assert any("cut GET /slow/" in line for line in cut), log
    for pid in threaded:
        assert any(f"process {pid} " in line for line in cut), (
            f"worker {pid} did not wait for its thread:\n{log}"
        )


SLOW_S = 6
"""A request in flight at a save: longer than a worker's boot on a loaded machine."""


@pytest.mark.parametrize(("mode", "worker"), [("per-worker", "sync"), ("warm", "gthread")])
def test_one_worker_serves_fresh_code_while_its_predecessor_finishes(
    gunicorn: StartGunicorn, demo_project: Path, mode: str, worker: str
) -> None:
    """gunicorn's default of one worker: a slow request in flight at a save must not keep
    every new request waiting until it ends. It finishes, with the code it began with, while
    the replacement serves the new code; then the server runs one worker again. A Ctrl-C
    meanwhile stops the finishing worker too, as it stops any other."""
    args = [("1" if a == "2" else a) for a in WORKER_ARGS[worker]]  # -w 1
    server = gunicorn(
        *args,
        "--graceful-timeout", GRACEFUL_TIMEOUT,
        "--timeout", GRACEFUL_TIMEOUT,
        *(("-c", "python:reloader.gunicorn") if mode == "warm" else ()),
        "reloader.wsgi:application",
        cwd=demo_project,
        env={**DEMO_ENV, "RELOADER_GRACE": "60"},
        workers=1,
        helpers=("reloader.warm",),
    )  # fmt: skip

    def slow_request() -> tuple[threading.Thread, list[Response | None]]:
        answers: list[Response | None] = []
        started = server.log().count("slow: started")
        slow = threading.Thread(
            target=lambda: answers.append(try_get(server.url(f"/slow/?s={SLOW_S}"), None, 120))
        )
        slow.start()
        wait_until(lambda: server.log().count("slow: started") > started)
        return slow, answers

    [old] = server.worker_pids()
    slow, answers = slow_request()
    write(demo_project / "pages" / "version.py", 'VERSION = "v2"\n')
    wait_for_body(server.url("/version/"), "v2 pid=")
    assert slow.is_alive(), "the first fresh answer came only once the slow request ended"
    slow.join(SLOW_S + 60)
    [answer] = answers
    assert answer is not None and answer.status == 200, answer
    assert answer.body.startswith(f"slept {SLOW_S}.0 v1 pid={old}"), answer.body
    wait_until(
        lambda: len(server.worker_pids()) == 1 and old not in server.worker_pids(),
        message=lambda: f"one worker again, a new one:\n{server.log_tail()}",
    )
    assert "still running" not in server.log()

    # Ctrl-C while a worker finishes a request: the server is gone at once.
    slow, answers = slow_request()
    write(demo_project / "pages" / "version.py", 'VERSION = "v3"\n')
    wait_for_body(server.url("/version/"), "v3 pid=")
    assert slow.is_alive()
    os.kill(server.pid, signal.SIGINT)
    # As any worker at a Ctrl-C: a sync one stops at once, a gthread one once its request
    # thread is done; not after the grace (60 s) or the graceful timeout (120 s).
    wait_until(
        lambda: not group_members(server.pid),
        2 * SLOW_S,
        message=lambda: f"every process gone:\n{server.log_tail()}",
    )
    slow.join(SLOW_S + 60)


@pytest.mark.parametrize("mode", MODES)
def test_a_template_save_is_offered_to_django_once_per_worker(
    gunicorn: StartGunicorn, demo_project: Path, mode: str
) -> None:
    server = start(gunicorn, demo_project, "gthread", mode)
    pids = server.worker_pids()
    template = demo_project / "pages" / "templates" / "pages" / "hello.html"
    # sed -i writes a temporary file beside the template and renames it over the template.
    subprocess.run(["sed", "-i", "s/template-v1/template-v2/", str(template)], check=True)

    def refreshed() -> list[str]:
        return [ln for ln in server.log().splitlines() if "refreshed without a restart" in ln]

    wait_until(lambda: len(refreshed()) >= len(pids), message=lambda: server.log_tail())
    server.warm("/hello/", check=lambda r: "template-v2" in r.body or pytest.fail(r.body))
    # Nothing more comes: a second offer of the same save would follow within a tick.
    with pytest.raises(AssertionError):
        wait_until(lambda: len(refreshed()) > len(pids), QUIET_PERIOD)
    for line in refreshed():
        assert line.endswith("refreshed without a restart: pages/templates/pages/hello.html"), line
    assert set(pids) <= set(server.worker_pids()) and not restart_lines(server.log())


def version_ids(server: PreforkServer, count: int = 4) -> set[str]:
    """django-browser-reload's process ids, as tabs connecting now would see them. No more
    streams at once than a worker has threads: they could all land on one worker."""
    streams = [EventStream(server.url("/__reload__/events/")) for _ in range(count)]
    try:
        return {json.loads(s.wait_events()[0])["versionId"] for s in streams}
    finally:
        for stream in streams:
            stream.close()


@pytest.mark.parametrize("mode", MODES)
def test_every_fresh_worker_is_new_to_django_browser_reload(
    gunicorn: StartGunicorn, demo_project: Path, mode: str
) -> None:
    project = make_live(demo_project)
    server = start_live(gunicorn, project, mode)
    seen = version_ids(server)
    # A view edit restarts the workers; a models edit, in warm mode, the arbiter too.
    # Twice a view edit: the second restart forks from an arbiter that has set Django up.
    edits = (("version", "v1", "v2"), ("version", "v2", "v3"), ("models", "m1", "m2"))
    for module, old, new in edits:
        edit(project / "pages" / f"{module}.py", f'"{old}"', f'"{new}"')
        if module == "version":
            assert_fresh_everywhere(server, "/version/", f"{new} pid=", DEMO_WARM)
        else:
            assert_fresh_everywhere(server, "/models-version/", f"{new} pid=", None)
            server.warm(DEMO_WARM)
        fresh = version_ids(server)
        assert not fresh & seen, f"a tab would not reload after the {module} edit"
        seen |= fresh


@pytest.mark.parametrize("mode", MODES)
def test_a_django_browser_reload_stream_lets_its_worker_go_at_once(
    gunicorn: StartGunicorn, demo_project: Path, mode: str
) -> None:
    server = start_live(gunicorn, make_live_pinging_slowly(demo_project), mode)
    with EventStream(server.url("/__reload__/events/")) as stream:
        stream.wait_events()
        holder = stream_holder(server.log())
        write(demo_project / "pages" / "version.py", 'VERSION = "v2"\n')
        assert stream.ended.wait(ENDED_WITHIN), server.log_tail()
        # Told to reload, the tab would reload once more on its new stream's new process id.
        assert "reload" not in [json.loads(e)["type"] for e in stream.events], stream.events
        wait_until(
            lambda: holder not in server.worker_pids(),
            timeout=ENDED_WITHIN,
            message=lambda: f"the worker that held the stream to exit:\n{server.log_tail()}",
        )
    assert_fresh_everywhere(server, "/version/", "v2 pid=", DEMO_WARM)
    assert "still running" not in server.log(), "nothing had to be cut"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("worker", ["sync", "gthread", "gevent"])
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_stop_of_the_whole_group_with_streams_open_ends_the_server(
    gunicorn: StartGunicorn, demo_project: Path, worker: str, mode: str, stop: signal.Signals
) -> None:
    """systemd's stop (KillMode=control-group), `kill -TERM -<pgid>`: SIGTERM reaches each
    worker from it and again from the arbiter's shutdown, maybe while the first is still
    waking the streams. No handler may wait for a lock the code it interrupted holds. A
    Ctrl-C (SIGINT, then the arbiter's SIGQUIT) must end the streams too: a gthread worker's
    interpreter waits for the threads serving them. gevent's are woken from a native thread."""
    project = make_live_pinging_slowly(demo_project)
    server = start(gunicorn, project, worker, mode, DJANGO_SETTINGS_MODULE=LIVE_SETTINGS)
    # A sync worker serves one stream at a time: a stream more would wait for a free one.
    count = 4 if worker != "sync" else server.workers
    streams = [EventStream(server.url("/__reload__/events/")) for _ in range(count)]
    try:
        wait_until(
            lambda: len(stream_holders(server.log())) >= len(streams),
            message=lambda: f"{len(streams)} streams to open:\n{server.log_tail()}",
        )
        workers = server.worker_pids()
        os.killpg(server.pid, stop)
        # The arbiter's SIGTERM comes at a moment of chance: these make that moment certain.
        # (Its Ctrl-C is SIGQUIT, to a handler that needs no help.)
        until = time.monotonic() + (0.5 if stop == signal.SIGTERM else 0)
        while time.monotonic() < until:
            for pid in workers:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, stop)
        wait_until(
            lambda: not group_members(server.pid),
            timeout=ENDED_WITHIN,
            message=lambda: f"the server to exit:\n{server.log_tail()}",
        )
    finally:
        for stream in streams:
            stream.close()
