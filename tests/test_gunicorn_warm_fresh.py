"""Warm mode never serves stale code, never loops, never goes deaf (issue #10): each case
works in per-worker mode, and must in warm mode too, against real gunicorn servers."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import DEMO_ENV, DEMO_SRC, DEMO_WARM, PLAIN_WARM, StartGunicorn
from support import (
    PreforkServer,
    assert_fresh_everywhere,
    children,
    copy_project,
    edit,
    every_worker_serves,
    fd_count,
    get,
    group_members,
    group_zombies,
    inotify_fds,
    probing,
    save_older,
    try_get,
    wait_for_body,
    wait_until,
    write,
)

pytestmark = pytest.mark.gunicorn

SUPERVISOR = "reloader.warm"
SET_UP = "Django set up in the tier process"
REEXEC = "re-executing the arbiter "  # the arbiter's line: its pid follows
REPLACED = "replacing the Django tier ("  # the arbiter's line: the old tier's pid follows
KINDS = {"sync": ("-k", "sync"), "gthread": ("-k", "gthread", "--threads", "4")}
COLD = {"gevent": ("-k", "gevent")}


def _start(
    gunicorn: StartGunicorn, project: Path, kind: str = "gthread", *args: str, **env: str
) -> PreforkServer:
    return gunicorn(
        "-c", "python:reloader.gunicorn", "-w", "2", *{**KINDS, **COLD}[kind], *args,
        cwd=project,
        env={**DEMO_ENV, **env},
        warm=DEMO_WARM,
        workers=2,
        helpers=(SUPERVISOR,),
    )  # fmt: skip


SETTINGS_READ_ENV = """
import os

# The load_dotenv(override=False) habit: the file fills in what the environment lacks.
for _line in (BASE_DIR / ".env").read_text().splitlines():
    _name, _, _value = _line.partition("=")
    os.environ.setdefault(_name.strip(), _value.strip())
GREETING = os.environ["GREETING"]
FLAVOUR = "s1"
"""

GREETING_VIEW = """

def greeting(request: HttpRequest) -> HttpResponse:
    from django.conf import settings

    return text(f"{settings.GREETING} {settings.FLAVOUR} pid={os.getpid()}")
"""


def _settings_read_env(project: Path) -> None:
    """settings.py reads `.env`; /greeting/ shows what the settings hold."""
    (project / ".env").write_text("GREETING=g1\n")
    _add_settings(project, SETTINGS_READ_ENV)


def _add_settings(project: Path, text: str) -> None:
    """Append `text` (defining GREETING and FLAVOUR) to the settings; /greeting/ shows them."""
    settings = project / "demo" / "settings.py"
    settings.write_text(settings.read_text() + text)
    views = project / "pages" / "views.py"
    views.write_text(views.read_text() + GREETING_VIEW)
    urls = project / "pages" / "urls.py"
    urls.write_text(urls.read_text() + 'urlpatterns.append(path("greeting/", views.greeting))\n')


def _fresh(server: PreforkServer, path: str, marker: str) -> None:
    """No answer lacks `marker` after the first that has it, and every worker has it."""
    assert_fresh_everywhere(server, path, marker, DEMO_WARM if path == "/version/" else None)
    every_worker_serves(server, path, marker)


def _held_by_tier(server: PreforkServer) -> None:
    """Wait until the Django tier holds the settings (set up once workers reported)."""
    server.wait_for_log(SET_UP)


@pytest.mark.parametrize(
    ("kind", "extra"), [("sync", None), ("gthread", ".env")], ids=["sync-opened", "gthread-extra"]
)
def test_env_file_read_by_settings_is_served_fresh(
    gunicorn: StartGunicorn, demo_project: Path, kind: str, extra: str | None
) -> None:
    """With RELOADER_EXTRA_FILES=.env as the README shows, and without it (the arbiter saw
    its settings open the file): the new value is served, though the arbiter's environment
    got the old one from `setdefault`."""
    _settings_read_env(demo_project)
    env = {"RELOADER_EXTRA_FILES": extra} if extra else {}
    server = _start(gunicorn, demo_project, kind, **env)
    _held_by_tier(server)
    assert get(server.url("/greeting/")).body.startswith("g1 s1 pid=")
    for greeting in ("g2", "g3"):
        write(demo_project / ".env", f"GREETING={greeting}\n")
        _fresh(server, "/greeting/", f"{greeting} s1 pid=")
    assert server.log().count(REPLACED) == 2
    assert REEXEC not in server.log()


@pytest.mark.parametrize("kind", ["sync", "gevent"])
def test_older_copy_of_a_module_restarts_the_workers(
    gunicorn: StartGunicorn, demo_project: Path, kind: str
) -> None:
    """`cp -p` / `git checkout` of an old file: older than every worker, changed all the same.
    (With gevent nothing is preloaded, the one watcher remains.)"""
    server = _start(gunicorn, demo_project, kind)
    save_older(demo_project / "pages" / "version.py", 'VERSION = "from-the-past"\n')
    _fresh(server, "/version/", "from-the-past pid=")


def test_older_copy_of_a_tier_file_replaces_the_tier(
    gunicorn: StartGunicorn, demo_project: Path
) -> None:
    server = _start(gunicorn, demo_project)
    _held_by_tier(server)
    models = demo_project / "pages" / "models.py"
    save_older(models, models.read_text().replace('"m1"', '"m-old"'))
    _fresh(server, "/models-version/", "m-old pid=")
    assert server.log().count(REPLACED) == 1


REGISTRY = '''"""Filled in by the WSGI file before Django's setup, checked by an app's ready()."""
REGISTERED: list[str] = []
'''

READY_NEEDS_WSGI = """
from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured


class PagesConfig(AppConfig):
    name = "pages"

    def ready(self) -> None:
        from demo import registry

        if not registry.REGISTERED:
            raise ImproperlyConfigured("demo.wsgi must register the plugins first")
"""


@pytest.mark.parametrize("kind", KINDS)
def test_setup_failing_only_in_the_arbiter_settles_with_one_warning(
    gunicorn: StartGunicorn, demo_project: Path, kind: str
) -> None:
    (demo_project / "demo" / "registry.py").write_text(REGISTRY)
    wsgi = demo_project / "demo" / "wsgi.py"
    wsgi.write_text(
        wsgi.read_text().replace(
            "application = ", 'from demo import registry\n\nregistry.REGISTERED.append("x")\n'
            "application = "
        )
    )  # fmt: skip
    (demo_project / "pages" / "apps.py").write_text(READY_NEEDS_WSGI)
    server = _start(gunicorn, demo_project, kind)
    server.wait_for_log("leaving it to the workers for this server's life")
    write(demo_project / "pages" / "version.py", 'VERSION = "v2"\n')
    _fresh(server, "/version/", "v2 pid=")
    # Settled: models are the workers' now, an edit restarts only them.
    edit(demo_project / "pages" / "models.py", '"m1"', '"m2"')
    _fresh(server, "/models-version/", "m2 pid=")
    log = server.log()
    # The arbiter itself never held the settings: no re-exec, no tier left.
    assert REEXEC not in log and log.count("Listening at") == 1, log
    assert not server.tier_pids()
    assert log.count("leaving it to the workers") == 1
    assert "ImproperlyConfigured: demo.wsgi must register the plugins first" in log
    assert SET_UP not in log


def test_setup_sees_what_the_wsgi_file_put_in_the_environment(
    gunicorn: StartGunicorn, demo_project: Path
) -> None:
    """`os.environ.setdefault(...)` in wsgi.py before get_wsgi_application(), which the
    settings require: the arbiter sets Django up with the workers' environment."""
    wsgi = demo_project / "demo" / "wsgi.py"
    wsgi.write_text(
        wsgi.read_text().replace(
            "application = ", 'os.environ.setdefault("DEMO_FLAVOUR", "from-wsgi")\n\napplication = '
        )
    )
    _add_settings(
        demo_project, '\nimport os\n\nGREETING = os.environ["DEMO_FLAVOUR"]\nFLAVOUR = "s1"\n'
    )
    server = _start(gunicorn, demo_project)
    _held_by_tier(server)
    edit(demo_project / "demo" / "settings.py", 'FLAVOUR = "s1"', 'FLAVOUR = "s2"')
    _fresh(server, "/greeting/", "from-wsgi s2 pid=")
    log = server.log()
    assert "leaving it to the workers" not in log
    assert log.count(REPLACED) == 1


def _run_dir(server: PreforkServer) -> Path:
    (supervisor,) = server.helper_pids()
    argv = Path(f"/proc/{supervisor}/cmdline").read_bytes().split(b"\0")
    return Path(os.fsdecode(argv[argv.index(SUPERVISOR.encode()) + 1]))


SLOW_SUPERVISOR = """\
import time

with open("/proc/self/cmdline", "rb") as cmdline:
    if b"reloader.warm" in cmdline.read():
        time.sleep(2)  # a busy machine: the workers serve before the supervisor watches
"""


def test_a_save_while_the_supervisor_starts_is_not_lost(
    gunicorn: StartGunicorn, demo_project: Path, tmp_path: Path
) -> None:
    """The supervisor reads the workers' reports as it starts: a save made after a worker
    loaded the file and before the supervisor watched it still restarts that worker."""
    slow = tmp_path / "slow-start"
    slow.mkdir()
    (slow / "sitecustomize.py").write_text(SLOW_SUPERVISOR)
    server = _start(gunicorn, demo_project, PYTHONPATH=str(slow))
    assert get(server.url("/version/")).body.startswith("v1 pid=")
    edit(demo_project / "pages" / "version.py", '"v1"', '"v2"')
    _fresh(server, "/version/", "v2 pid=")


def test_killed_supervisor_is_replaced_and_catches_up(
    gunicorn: StartGunicorn, demo_project: Path
) -> None:
    server = _start(gunicorn, demo_project)
    (supervisor,) = server.helper_pids()
    # Saved while no supervisor watches: stopped first, so it cannot see the save.
    os.kill(supervisor, signal.SIGSTOP)
    write(demo_project / "pages" / "version.py", 'VERSION = "v2"\n')
    os.kill(supervisor, signal.SIGKILL)
    server.wait_for_log(f"the watcher process {supervisor} was killed by SIGKILL")
    _fresh(server, "/version/", "v2 pid=")
    (replacement,) = wait_until(server.helper_pids, message="a new supervisor")
    assert replacement != supervisor
    write(demo_project / "pages" / "version.py", 'VERSION = "v3"\n')
    _fresh(server, "/version/", "v3 pid=")


@pytest.mark.parametrize(
    "damage",
    [
        '{"pid": 1, "patterns": [[1]]}',  # malformed: skipped as no report
        '{"pid": 1, "started_ns": 1, "files": ["/x\\u0000y"]}',  # a name stat() refuses
    ],
    ids=["malformed", "impossible-file-name"],
)
def test_damaged_report_does_not_make_the_server_deaf(
    gunicorn: StartGunicorn, demo_project: Path, damage: str
) -> None:
    server = _start(gunicorn, demo_project)
    (_run_dir(server) / "worker-1.json").write_text(damage)
    write(demo_project / "pages" / "version.py", 'VERSION = "v2"\n')
    _fresh(server, "/version/", "v2 pid=")


def test_removed_run_directory_is_made_again(gunicorn: StartGunicorn, demo_project: Path) -> None:
    server = _start(gunicorn, demo_project)
    run_dir = _run_dir(server)
    shutil.rmtree(run_dir)
    server.wait_for_log(f"the run directory {run_dir} was removed")
    wait_until(lambda: len(list(run_dir.glob("worker-*.json"))) == 2, message="new reports")
    write(demo_project / "pages" / "version.py", 'VERSION = "v2"\n')
    _fresh(server, "/version/", "v2 pid=")


def test_ignore_glob_does_not_hide_the_reports(gunicorn: StartGunicorn, demo_project: Path) -> None:
    server = _start(gunicorn, demo_project, RELOADER_IGNORE="*.json")
    write(demo_project / "pages" / "version.py", 'VERSION = "v2"\n')
    _fresh(server, "/version/", "v2 pid=")


def test_broken_config_keeps_the_old_arbiter_serving(
    gunicorn: StartGunicorn, demo_project: Path
) -> None:
    """A half-typed gunicorn.conf.py: gunicorn's USR2 keeps the old master for this; so do we."""
    config = demo_project / "gunicorn_warm.py"
    good = "from reloader.gunicorn import *  # noqa: F403\n\nworkers = 2\nthreads = 4\n"
    config.write_text(good)
    server = gunicorn(
        "-c", str(config), cwd=demo_project, env=DEMO_ENV, warm=DEMO_WARM, workers=2,
        helpers=(SUPERVISOR,),
    )  # fmt: skip
    arbiter, workers = server.pid, server.worker_pids()
    write(config, good + "timeout = (\n")
    server.wait_for_log("the new gunicorn would not start")
    assert "SyntaxError" in server.log()
    # (A trial start may still run, as a child of the arbiter, for a second event.)
    wait_until(lambda: server.worker_pids() == workers, message="the old workers only")
    assert server.poll() is None
    assert get(server.url("/version/")).body.startswith("v1 pid=")

    write(config, good + "timeout = 120\n")
    server.wait_for_log(REEXEC)
    wait_until(
        lambda: (pids := server.worker_pids()) and len(pids) == 2 and not set(pids) & set(workers),
        message=lambda: f"the new image's workers:\n{server.log_tail()}",
    )
    assert server.pid == arbiter
    write(demo_project / "pages" / "version.py", 'VERSION = "v2"\n')
    _fresh(server, "/version/", "v2 pid=")


@dataclass(frozen=True)
class Footprint:
    """What a server holds that could pile up across re-execs."""

    processes: int  # in the server's process group, zombies included
    descriptors: int  # the arbiter's
    temp: tuple[str, ...]  # what is in the server's temp folder (its run directory)


def _control_socket_up(server: PreforkServer) -> bool:
    """gunicorn 22+ serves a control socket from a thread of the arbiter, with four
    descriptors of its own (an event loop's and the listener), and closes it around every
    fork: the arbiter's count is only comparable while it listens. Older gunicorns have none.
    Looked up in the kernel's table, not connected to: a connection is a descriptor too."""
    paths = re.findall(r"Control socket listening at (\S+)", server.log())
    if not paths:
        return True
    listening = "00010000"  # __SO_ACCEPTCON, in the Flags column
    with open("/proc/net/unix", encoding="utf-8") as table:
        return any(
            line.split()[3] == listening and line.rstrip().endswith(" " + paths[-1])
            for line in table
        )


def _footprint(server: PreforkServer, temp: Path) -> Footprint:
    """Measured between two looks at the control socket that both found it up, while no
    probe runs (its processes are in the group, for a moment)."""

    def measured() -> Footprint | None:
        if not _control_socket_up(server) or probing(server.pid):
            return None
        now = Footprint(
            len(group_members(server.pid, zombies=True)),
            fd_count(server.pid),
            tuple(sorted(p.name for p in temp.iterdir())),
        )
        return now if _control_socket_up(server) else None

    return wait_until(measured, message="the control socket to be up, and no probe")


def _steady_footprint(server: PreforkServer, temp: Path) -> Footprint:
    """A baseline: the arbiter, its workers, one supervisor, one tier and its spare, and three
    looks 0.2 s apart that agree; never one taken while an old worker finishes, or while the
    arbiter imports what a probe found (a descriptor of its own for the moment)."""
    seen: list[Footprint] = []

    def steady() -> Footprint | None:
        seen.append(now := _footprint(server, temp))
        settled = now.processes == 4 + server.workers and len(seen) >= 3
        return now if settled and now == seen[-2] == seen[-3] else None

    return wait_until(steady, interval=0.2, message=lambda: f"a steady footprint: {seen[-3:]}")


def _settled(server: PreforkServer, temp: Path, before: Footprint) -> Footprint:
    """Wait until the old workers finished and were reaped: as many processes and descriptors
    as `before`, one run directory (a new one per image), and no zombie."""

    def same() -> bool:
        now = _footprint(server, temp)
        return (
            now.processes == before.processes
            and now.descriptors == before.descriptors
            and len(now.temp) == len(before.temp)
            and not group_zombies(server.pid)
        )

    wait_until(
        same,
        message=lambda: (
            f"{before}, have {_footprint(server, temp)}, zombies {group_zombies(server.pid)}"
        ),
    )
    return _footprint(server, temp)


def test_tier_replacements_leave_nothing_behind(
    gunicorn: StartGunicorn, demo_project: Path, tmp_path: Path
) -> None:
    """Each models edit replaces the Django tier (a process that forks the workers): after
    many, the server's process group holds the arbiter, its two workers, one supervisor, one
    tier and one spare tier, no zombie, the arbiter no descriptor more than before, and the
    server's temp folder its one run directory."""
    temp = tmp_path / "server-temp"
    temp.mkdir()
    server = _start(gunicorn, demo_project, TMPDIR=str(temp))
    _held_by_tier(server)
    arbiter = server.pid
    before = _steady_footprint(server, temp)
    assert before.processes == 6, "the arbiter, two workers, one supervisor, a tier, a spare"
    assert before.temp == (_run_dir(server).name,)
    models = demo_project / "pages" / "models.py"
    for n in range(2, 2 + TIER_EDITS):
        edit(models, f'"m{n - 1}"', f'"m{n}"')
        _fresh(server, "/models-version/", f"m{n} pid=")
    log = server.log()
    assert log.count(REPLACED) == TIER_EDITS, log
    assert REEXEC not in log and log.count("Listening at") == 1
    assert server.pid == arbiter
    after = _settled(server, temp, before)
    assert len(server.helper_pids()) == 1 and len(server.tier_pids()) == 1
    assert len(server.spare_pids()) == 1
    assert after.temp == (_run_dir(server).name,), "only the current run directory"
    server.stop()
    assert not list(temp.iterdir()), "the run directory outlives the server"


def test_a_server_that_halts_at_boot_leaves_no_run_directory(
    gunicorn: StartGunicorn, demo_project: Path, tmp_path: Path
) -> None:
    """A worker that fails to boot (no application named) halts gunicorn, whose halt skips
    the on_exit hook that removes the run directory: the supervisor, which outlives the
    arbiter by at most a second, removes it, and nothing of the server is left."""
    temp = tmp_path / "server-temp"
    temp.mkdir()
    server = gunicorn(
        "-c", "python:reloader.gunicorn", "-w", "4",  # several fail: gunicorn halts in halt()
        cwd=demo_project,
        env={"TMPDIR": str(temp)},
        ready=None,
        workers=4,
        helpers=(SUPERVISOR,),
    )  # fmt: skip
    wait_until(lambda: server.poll() is not None, message=server.log_tail)
    assert "Worker failed to boot" in server.log() and "no application to serve" in server.log()
    wait_until(
        lambda: not group_members(server.pid, zombies=True) and not list(temp.iterdir()),
        message=lambda: f"{group_members(server.pid, zombies=True)}, {list(temp.iterdir())}",
    )


def test_the_run_directory_of_a_killed_server_goes_at_the_next_start(
    gunicorn: StartGunicorn, demo_project: Path, tmp_path: Path
) -> None:
    """SIGKILL (an OOM kill, a harness that gave up) ends the server with no hook run: the
    next warm server to start removes the run directory left behind, and only that one."""
    temp = tmp_path / "server-temp"
    temp.mkdir()
    killed = _start(gunicorn, demo_project, TMPDIR=str(temp))
    left = _run_dir(killed)
    os.killpg(killed.pid, signal.SIGKILL)
    killed.stop()  # reaps what the kill ended
    assert left.is_dir(), "nothing could remove it"
    other = temp / "reloader-warm-notes"  # not a run directory's name: not ours to remove
    other.mkdir()
    server = _start(gunicorn, demo_project, TMPDIR=str(temp))
    assert not left.exists(), "the killed server's run directory is still there"
    assert sorted(p.name for p in temp.iterdir()) == sorted([_run_dir(server).name, other.name])


TIER_EDITS = int(os.environ.get("RELOADER_LEAK_EDITS", "12"))
"""The issue asks for 50 (RELOADER_LEAK_EDITS=50); 12 keeps CI short."""

SOAK_EDITS = int(os.environ.get("RELOADER_SOAK_EDITS", "25"))
"""The issue asks for 200; 25 (five of each kind) keeps CI short (RELOADER_SOAK_EDITS=200 for
the full run)."""


@contextlib.contextmanager
def _steady_load(server: PreforkServer, path: str) -> Iterator[list[str]]:
    """Requests to `path` one after another in a thread, through every restart, new tier and
    re-exec (they wait in the backlog): the list yielded gathers those that failed."""
    failures: list[str] = []
    stop = threading.Event()

    def keep_asking() -> None:
        while not stop.is_set():
            resp = try_get(server.url(path))
            if resp is None or resp.status != 200:
                failures.append("no answer" if resp is None else f"{resp.status} {resp.body}")

    client = threading.Thread(target=keep_asking)
    client.start()
    try:
        yield failures
    finally:
        stop.set()
        client.join()


def test_soak_every_kind_of_edit(
    gunicorn: StartGunicorn, demo_project: Path, tmp_path: Path
) -> None:
    """Views, models, settings, .env and templates edited in turn: every answer after the
    first fresh one is fresh, no request fails, and nothing is left behind."""
    _settings_read_env(demo_project)
    temp = tmp_path / "server-temp"
    temp.mkdir()
    server = _start(gunicorn, demo_project, TMPDIR=str(temp))
    _held_by_tier(server)
    template = demo_project / "pages" / "templates" / "pages" / "hello.html"
    template.write_text("t0 pid={{ pid }}")
    wait_for_body(server.url("/hello/"), "t0 pid=")
    before = _steady_footprint(server, temp)

    with _steady_load(server, "/version/") as failures:
        for n in range(1, SOAK_EDITS + 1):
            kind = n % 5
            if kind == 0:
                write(demo_project / "pages" / "version.py", f'VERSION = "v{n}"\n')
                path, marker = "/version/", f"v{n} pid="
            elif kind == 1:
                text = (demo_project / "pages" / "models.py").read_text()
                start = text.index('VERSION = "') + len('VERSION = "')
                old = text[start : text.index('"', start)]
                edit(demo_project / "pages" / "models.py", f'"{old}"', f'"m{n}"')
                path, marker = "/models-version/", f"m{n} pid="
            elif kind == 2:
                settings = demo_project / "demo" / "settings.py"
                text = settings.read_text()
                start = text.index('FLAVOUR = "') + len('FLAVOUR = "')
                old = text[start : text.index('"', start)]
                edit(settings, f'FLAVOUR = "{old}"', f'FLAVOUR = "s{n}"')
                path, marker = "/greeting/", f" s{n} pid="
            elif kind == 3:
                write(demo_project / ".env", f"GREETING=g{n}\n")
                path, marker = "/greeting/", f"g{n} "
            else:
                write(template, f"t{n} pid={{{{ pid }}}}")
                path, marker = "/hello/", f"t{n} pid="
            _fresh(server, path, marker)
    assert not failures, failures[:5]
    _settled(server, temp, before)
    server.stop()
    assert not list(temp.iterdir()), "run directories left behind"
    # Never a loop: at most one new tier per edit of what the tier holds (fewer when one
    # covers two saves), and never a re-exec.
    replaced = server.log().count(REPLACED)
    assert 0 < replaced <= 3 * (SOAK_EDITS // 5) + 1, replaced
    assert REEXEC not in server.log()


def test_options_given_to_wrap_reach_the_supervisor(
    gunicorn: StartGunicorn, plain_project: Path
) -> None:
    """`wrap(..., ignore=[...], polling=True)`: the one watcher of a warm server
    honours them, as each worker's own watcher does in per-worker mode."""
    (plain_project / "settings.txt").write_text("one\n")
    (plain_project / "dev_wsgi.py").write_text(
        "from reloader import wrap\n\n"
        'application = wrap("plainapp:application", extra_files=["*.txt"],'
        ' ignore=["settings.txt"], polling=True)\n'
    )
    server = gunicorn(
        "-c", "python:reloader.gunicorn", "-w", "2", "dev_wsgi:application",
        cwd=plain_project, warm=PLAIN_WARM, workers=2, helpers=(SUPERVISOR,),
    )  # fmt: skip
    (supervisor,) = server.helper_pids()
    wait_until(lambda: inotify_fds(supervisor) == 0, message="the supervisor to poll")
    pids = server.worker_pids()
    write(plain_project / "settings.txt", "two\n")
    write(plain_project / "plainversion.py", 'VERSION = "v2"\n')
    assert_fresh_everywhere(server, "/", "v2 pid=", PLAIN_WARM)
    lines = [line for line in server.log().splitlines() if "restarting workers" in line]
    assert lines and not [line for line in lines if "settings.txt" in line], lines
    assert not set(server.worker_pids()) & set(pids)


def test_no_new_tier_while_the_server_shuts_down(
    gunicorn: StartGunicorn, demo_project: Path
) -> None:
    """A save of what the tier holds while the arbiter waits for its workers to finish on
    SIGTERM: the server still stops, instead of setting up a new tier."""
    server = _start(gunicorn, demo_project)
    _held_by_tier(server)
    slow = threading.Thread(target=try_get, args=(server.url("/slow/?s=3"),))
    started = server.log().count("slow: started")
    slow.start()
    try:
        # In flight: the arbiter's stop waits for it, the window for the save.
        wait_until(
            lambda: server.log().count("slow: started") > started, message="the slow request"
        )
        os.kill(server.pid, signal.SIGTERM)
        server.wait_for_log("Handling signal: term")
        edit(demo_project / "pages" / "models.py", '"m1"', '"m2"')
        server.wait_for_log("replacing the Django tier: changed pages/models.py")
        server.wait_exit()
    finally:
        slow.join()
    assert REEXEC not in server.log() and REPLACED not in server.log()


@pytest.mark.skipif(os.geteuid() != 0, reason="--user needs root")
def test_workers_of_another_user_report_and_reload(gunicorn: StartGunicorn) -> None:
    """`--user www-data` (the user the Apache tests use, which can read the interpreter):
    the workers drop to it and must still write their reports into the run directory."""
    shared = Path(tempfile.mkdtemp(prefix="reloader-user-test-"))
    try:
        shared.chmod(0o755)  # the workers' user must read the project
        project = copy_project(DEMO_SRC, shared / "demo")
        server = _start(gunicorn, project, "gthread", "--user", "www-data", "--group", "www-data")
        write(project / "pages" / "version.py", 'VERSION = "v2"\n')
        _fresh(server, "/version/", "v2 pid=")
        assert "cannot report" not in server.log()
        server.stop()
    finally:
        shutil.rmtree(shared)


@pytest.mark.parametrize("kind", KINDS)
def test_models_and_settings_edits_replace_the_tier(
    gunicorn: StartGunicorn, demo_project: Path, kind: str
) -> None:
    """Issue #11: what Django's setup imported (models, settings) is the tier's, and an edit
    of it replaces the tier, a fork of the arbiter: the same arbiter, no exec, no request
    lost, no stale answer after the first fresh one."""
    _add_settings(demo_project, '\nGREETING = "hi"\nFLAVOUR = "s1"\n')
    server = _start(gunicorn, demo_project, kind)
    _held_by_tier(server)
    arbiter, tiers = server.pid, set(server.tier_pids())
    with _steady_load(server, "/models-version/") as failures:
        edit(demo_project / "pages" / "models.py", '"m1"', '"m2"')
        _fresh(server, "/models-version/", "m2 pid=")
        tiers.update(server.tier_pids())
        edit(demo_project / "demo" / "settings.py", 'FLAVOUR = "s1"', 'FLAVOUR = "s2"')
        _fresh(server, "/greeting/", "hi s2 pid=")
    assert not failures, failures[:5]
    log = server.log()
    assert "replacing the Django tier: changed pages/models.py" in log
    assert "replacing the Django tier: changed demo/settings.py" in log
    assert log.count(REPLACED) == 2 and log.count(SET_UP) == 3, log
    assert server.pid == arbiter and REEXEC not in log and log.count("Listening at") == 1
    (tier,) = server.tier_pids()
    assert len(tiers) == 2 and tier not in tiers


SPARE_WENT_ON = "the rest of a spare's"  # in the new tier's SET_UP line


def _spare(server: PreforkServer) -> int:
    """The spare tier's pid, once the arbiter made it beside the tier."""
    pids = wait_until(
        server.spare_pids, message=lambda: f"a spare tier beside the tier:\n{server.log_tail()}"
    )
    assert len(pids) == 1, pids
    return pids[0]


@pytest.mark.parametrize("kind", KINDS)
def test_a_spare_tier_goes_on_for_a_models_edit_not_for_a_settings_one(
    gunicorn: StartGunicorn, demo_project: Path, kind: str
) -> None:
    """Issue #11: beside the tier, a spare fork of the arbiter has read the settings, the app
    configs and the installed apps' models, and parked before the project's first module. A
    models edit makes it the tier; a settings edit throws it away (it read the old ones), and
    a new fork sets Django up from the start. No stale answer, no request lost, either way."""
    _add_settings(demo_project, '\nGREETING = "hi"\nFLAVOUR = "s1"\n')
    server = _start(gunicorn, demo_project, kind)
    _held_by_tier(server)
    spare = _spare(server)
    with _steady_load(server, "/models-version/") as failures:
        edit(demo_project / "pages" / "models.py", '"m1"', '"m2"')
        _fresh(server, "/models-version/", "m2 pid=")
        assert server.tier_pids() == [spare], "the spare is the tier now"
        assert server.log().count(SPARE_WENT_ON) == 1
        second = _spare(server)  # made beside the new tier
        assert second != spare
        edit(demo_project / "demo" / "settings.py", 'FLAVOUR = "s1"', 'FLAVOUR = "s2"')
        _fresh(server, "/greeting/", "hi s2 pid=")
        every_worker_serves(server, "/models-version/", "m2 pid=")
    assert not failures, failures[:5]
    (tier,) = server.tier_pids()
    assert tier not in (spare, second), "a new fork, not the spare that read the old settings"
    assert second not in children(server.pid), "the stale spare is gone, reaped"
    log = server.log()
    assert log.count(SPARE_WENT_ON) == 1 and log.count(SET_UP) == 3, log
    assert REEXEC not in log


def test_a_spare_tier_that_read_the_old_env_file_is_thrown_away(
    gunicorn: StartGunicorn, demo_project: Path
) -> None:
    """The settings read `.env` while the spare set up: a change of it is a change of what
    the spare read, though no module of it changed."""
    _settings_read_env(demo_project)
    server = _start(gunicorn, demo_project, "sync")
    _held_by_tier(server)
    spare = _spare(server)
    write(demo_project / ".env", "GREETING=g2\n")
    _fresh(server, "/greeting/", "g2 s1 pid=")
    assert spare not in server.tier_pids() and SPARE_WENT_ON not in server.log()


SLOW_SETUP = """
import time

if (BASE_DIR / "slow-setup").exists():  # a stat, not an open: not a file the tier holds
    print("settings: a slow setup", flush=True)
    time.sleep(2)
"""


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_stop_while_the_tier_is_replaced(
    gunicorn: StartGunicorn, demo_project: Path, how: str
) -> None:
    """Ctrl-C (SIGINT to the process group) or SIGTERM to the arbiter while a new tier sets
    Django up: the server stops, and leaves no process, not even a zombie."""
    settings = demo_project / "demo" / "settings.py"
    settings.write_text(settings.read_text() + SLOW_SETUP)
    server = _start(gunicorn, demo_project)
    _held_by_tier(server)
    (demo_project / "slow-setup").write_text("")
    edit(demo_project / "pages" / "models.py", '"m1"', '"m2"')
    server.wait_for_log("settings: a slow setup")
    if how == "ctrl-c":
        os.killpg(server.pid, signal.SIGINT)
    else:
        os.kill(server.pid, signal.SIGTERM)
    assert server.wait_exit() == 0, server.log_tail()
    wait_until(
        lambda: not group_members(server.pid, zombies=True),
        message=lambda: f"no process left: {group_members(server.pid, zombies=True)}",
    )
    assert "Traceback" not in server.log()
