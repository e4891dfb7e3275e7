"""gunicorn end-to-end: which saves reload, which do not, and that reloads reach every worker."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import (
    DEMO_ENV,
    DEMO_WARM,
    GUNICORN_CONF,
    PLAIN_WARM,
    WORKER_ARGS,
    StartGunicorn,
)
from support import (
    QUIET_PERIOD,
    PreforkServer,
    SteadyLoad,
    assert_fresh_everywhere,
    atomic_save,
    fd_count,
    get,
    lines_naming_pid,
    older_after_newer,
    restart_lines,
    save_older,
    save_paced,
    wait_until,
    write,
)

pytestmark = pytest.mark.gunicorn

WORKERS = ["sync", "gthread"]
SAVES: dict[str, Callable[[Path, str], None]] = {
    "write": write,
    "atomic": atomic_save,
    "older-copy": save_older,
}


def version_source(version: str) -> str:
    return f'VERSION = "{version}"\n'


def assert_one_restart_per_worker(server: PreforkServer, old_pids: list[int], name: str) -> None:
    """Each old worker logged exactly one restart naming ``name``, and nothing else did."""
    lines = restart_lines(server.log(), name)
    for pid in old_pids:
        assert len(lines_naming_pid(lines, pid)) == 1, (
            f"worker {pid} should log one restart for {name}:\n" + "\n".join(lines)
        )
    assert len(lines) == len(old_pids), "\n".join(lines)


def wait_restart_for(server: PreforkServer, name: str) -> None:
    wait_until(
        lambda: restart_lines(server.log(), name),
        message=lambda: f"a restart for {name}:\n{server.log_tail()}",
    )


def wait_all_replaced(server: PreforkServer, old_pids: list[int]) -> list[int]:
    return wait_until(
        lambda: (pids := server.wait_workers()) and not set(pids) & set(old_pids) and pids,
        message=lambda: f"workers {old_pids} to be replaced:\n{server.log_tail()}",
    )


@pytest.mark.parametrize("worker", WORKERS)
@pytest.mark.parametrize("save", SAVES)
def test_save_reloads_every_worker(
    demo_server: StartGunicorn, demo_project: Path, worker: str, save: str
) -> None:
    server = demo_server(worker)
    old_pids = server.worker_pids()
    SAVES[save](demo_project / "pages" / "version.py", version_source("v2"))

    first = assert_fresh_everywhere(server, "/version/", "v2 pid=", DEMO_WARM)
    assert first.content_type.startswith("text/plain")
    assert not set(server.worker_pids()) & set(old_pids)
    assert_one_restart_per_worker(server, old_pids, "version.py")


@pytest.mark.parametrize("worker", WORKERS)
def test_unrelated_writes_do_not_restart(
    demo_server: StartGunicorn, demo_project: Path, worker: str
) -> None:
    server = demo_server(worker)
    pids = server.worker_pids()
    pages = demo_project / "pages"

    # What editors, Python and apps write next to the code while a developer works.
    for pyc in (pages / "__pycache__").glob("*.pyc"):
        pyc.write_bytes(pyc.read_bytes())
    (pages / "__pycache__").mkdir(exist_ok=True)
    (pages / "__pycache__" / "extra.cpython-311.pyc").write_bytes(b"\0" * 16)
    (pages / ".views.py.swp").write_bytes(b"vim swap")
    (pages / "views.py~").write_text("backup")
    (pages / ".#views.py").symlink_to("user@host.1234:1700000000")  # emacs lock: a dangling link
    (pages / "4913").write_text("")  # vim's probe file when checking a directory is writable
    (demo_project / "notes.txt").write_text("todo")
    for log in (demo_project / "debug.log", pages / "app.log"):
        with open(log, "a") as fh:
            for i in range(50):
                fh.write(f"line {i}\n")
                fh.flush()

    with pytest.raises(AssertionError):
        wait_until(lambda: restart_lines(server.log()), timeout=QUIET_PERIOD)
    assert server.worker_pids() == pids
    assert get(server.url("/version/")).body.startswith("v1 pid=")

    # The watcher was alive all along: a real change still restarts.
    write(pages / "version.py", version_source("v2"))
    assert_fresh_everywhere(server, "/version/", "v2 pid=", DEMO_WARM)
    assert restart_lines(server.log(), "version.py")


@pytest.mark.parametrize("worker", WORKERS)
def test_burst_of_saves_restarts_each_worker_once(
    demo_server: StartGunicorn, demo_project: Path, worker: str
) -> None:
    # 200 imported modules, as a formatter run or a `git checkout` rewrites them all.
    bulk = demo_project / "pages" / "bulk"
    bulk.mkdir()
    names = [f"m{i:03d}" for i in range(200)]
    (bulk / "__init__.py").write_text("".join(f"from . import {n}  # noqa\n" for n in names))
    for name in names:
        (bulk / f"{name}.py").write_text("X = 1\n")
    views = demo_project / "pages" / "views.py"
    write(views, "from . import bulk  # noqa: F401\n" + views.read_text())

    server = demo_server(worker)
    old_pids = server.worker_pids()
    write(demo_project / "pages" / "version.py", version_source("v2"))
    for name in names:
        write(bulk / f"{name}.py", "X = 2\n")

    assert_fresh_everywhere(server, "/version/", "v2 pid=", DEMO_WARM)
    # Late events of the burst must not restart the fresh workers once more.
    with pytest.raises(AssertionError):
        wait_until(lambda: len(restart_lines(server.log())) > len(old_pids), timeout=QUIET_PERIOD)
    lines = restart_lines(server.log())
    for pid in old_pids:
        assert len(lines_naming_pid(lines, pid)) == 1, "\n".join(lines)
    assert len(lines) == len(old_pids), "\n".join(lines)


LONG_BURST = 12
"""Modules a long burst saves, 80-160 ms apart: 1.3 s, longer than a worker's restart."""


RESTARTED_RE = re.compile(r"restarting (?:gunicorn worker|workers?) ([\d, ]+):")


def restarted_pids(log: str) -> list[int]:
    """Each worker a restart line names, as often as it is named: a worker's own line, the
    warm supervisor's 'restarting workers 11, 12: changed ...'."""
    return [
        int(pid)
        for line in restart_lines(log)
        if (match := RESTARTED_RE.search(line))
        for pid in match.group(1).split(", ")
    ]


@pytest.mark.parametrize("mode", ["per-worker", "warm"])
def test_long_burst_does_not_restart_per_save(
    gunicorn: StartGunicorn, demo_project: Path, mode: str
) -> None:
    """A burst longer than a restart, walking from one package to the next as a formatter
    does: the first save restarts the workers, whose replacements wait for the rest and load
    the final tree once, instead of restarting for each part. A warm worker loads in less
    than the gap between two saves: it serves the first part (a single save must not wait),
    and restarts once more when the second comes."""
    bulk = demo_project / "pages" / "bulk"
    names = [f"m{i:02d}" for i in range(LONG_BURST)]
    half = LONG_BURST // 2
    homes = {n: bulk / ("a" if i < half else "b") for i, n in enumerate(names)}
    for home in {*homes.values(), bulk}:
        home.mkdir(parents=True, exist_ok=True)
        (home / "__init__.py").touch()
    (bulk / "__init__.py").write_text(
        "".join(f"from .{homes[n].name}.{n} import X as {n}\n" for n in names)
        + f"TOTAL = {' + '.join(names)}\n"
    )
    for name in names:
        (homes[name] / f"{name}.py").write_text("X = 1\n")
    write(
        demo_project / "pages" / "version.py", 'from .bulk import TOTAL\n\nVERSION = f"v{TOTAL}"\n'
    )
    args = WORKER_ARGS["gthread"] if mode == "per-worker" else ("-c", "python:reloader.gunicorn")
    server = gunicorn(*args, "-w", "2", "--threads", "4", "reloader.wsgi:application",
                      cwd=demo_project, env=DEMO_ENV, warm=DEMO_WARM, workers=2,
                      helpers=("reloader.warm",))  # fmt: skip
    assert get(server.url("/version/")).body.startswith(f"v{LONG_BURST} pid=")
    old_pids = server.worker_pids()

    save_paced([(homes[n] / f"{n}.py", "X = 100\n") for n in names], gaps=[0.08, 0.12, 0.16])

    assert_fresh_everywhere(server, "/version/", f"v{100 * LONG_BURST} pid=", DEMO_WARM)
    restarted = restarted_pids(server.log())
    # Late events of the burst restart nothing more.
    with pytest.raises(AssertionError):
        wait_until(lambda: restarted_pids(server.log()) != restarted, timeout=QUIET_PERIOD)
    lines = "\n".join(restart_lines(server.log()))
    assert sorted(p for p in restarted if p in old_pids) == sorted(old_pids), lines
    again = set(restarted) - set(old_pids)  # a warm worker and the supervisor may both say so
    assert len(again) <= (0 if mode == "per-worker" else len(old_pids)), lines


def _version_number(body: str) -> int | None:
    match = re.match(r"v(\d+) pid=", body)
    return int(match.group(1)) if match else None


@pytest.mark.parametrize("worker", WORKERS)
def test_a_worker_late_to_see_a_save_answers_no_one_after_a_fresh_answer(
    demo_server: StartGunicorn, demo_project: Path, worker: str
) -> None:
    """On a machine out of CPU one worker's watcher can see a save after a peer restarted and
    its replacement booted. Here that worker is stopped meanwhile: its old code may answer
    what was asked before the first fresh answer, nothing after it."""
    server = demo_server(worker)
    late, other = server.worker_pids()
    with SteadyLoad(server.url("/version/")) as load:
        load.wait_for("v1 pid=", then=20)
        os.kill(late, signal.SIGSTOP)
        try:
            write(demo_project / "pages" / "version.py", version_source("v2"))
            wait_until(lambda: len(set(server.worker_pids()) - {late, other}) == 1)
            # About a boot more: the replacement loads and could answer meanwhile.
            time.sleep(0.8)
        finally:
            os.kill(late, signal.SIGCONT)
        load.wait_for("v2 pid=", then=60)
    failed = [a for a in load.answers if a.status != 200]
    assert not failed, f"{len(failed)} failed answers, e.g. {failed[0]}"
    stale = older_after_newer(load.answers, _version_number)
    assert not stale, f"{len(stale)} of {len(load.answers)} answers stale:\n" + "\n".join(stale[:8])
    assert lines_naming_pid(restart_lines(server.log(), "version.py"), late), server.log()


@pytest.mark.parametrize("worker", WORKERS)
def test_lazily_imported_module_is_watched(
    demo_server: StartGunicorn, demo_project: Path, worker: str
) -> None:
    server = demo_server(worker)
    for _ in range(8):  # spread the first import of pages.lazy over the workers
        assert get(server.url("/lazy/")).body == "lazy-v1"

    write(demo_project / "pages" / "lazy.py", 'LAZY = "lazy-v2"\n')
    assert_fresh_everywhere(server, "/lazy/", "lazy-v2", None)
    assert restart_lines(server.log(), "lazy.py")


@pytest.mark.parametrize("worker", WORKERS)
def test_extra_files_and_ignore(
    demo_server: StartGunicorn, demo_project: Path, worker: str
) -> None:
    (demo_project / ".env").write_text("DEBUG=1\n")
    config = demo_project / "config"
    config.mkdir()
    (config / "app.toml").write_text("a = 1\n")
    (config / "local.toml").write_text("b = 1\n")
    server = demo_server(
        worker,
        env={
            "RELOADER_EXTRA_FILES": os.pathsep.join([".env", "config/*.toml"]),
            "RELOADER_IGNORE": os.pathsep.join(["*local.toml", "*version.py"]),
        },
    )
    pids = server.worker_pids()

    # Ignored: a file matched by the extra glob, and an imported module.
    write(config / "local.toml", "b = 2\n")
    write(demo_project / "pages" / "version.py", version_source("v2"))
    with pytest.raises(AssertionError):
        wait_until(lambda: restart_lines(server.log()), timeout=QUIET_PERIOD)
    assert server.worker_pids() == pids
    assert get(server.url("/version/")).body.startswith("v1 pid=")

    for changed in (demo_project / ".env", config / "app.toml"):
        write(changed, changed.read_text() + "# changed\n")
        wait_restart_for(server, changed.name)
        pids = wait_all_replaced(server, pids)
        # Like a developer who looks at the page before the next save.
        server.warm(DEMO_WARM)
    # Fresh workers import the version.py saved while it was ignored.
    assert_fresh_everywhere(server, "/version/", "v2 pid=", DEMO_WARM)


def test_extra_globs_with_wildcard_directories_and_trailing_double_star(
    plain_server: StartGunicorn, plain_project: Path
) -> None:
    """`config/*/x.toml` once watched a directory literally named '*', and `assets/**` only
    the top of assets/."""
    dev = plain_project / "config" / "dev"
    deep = plain_project / "assets" / "css" / "deep"
    for directory in (dev, deep):
        directory.mkdir(parents=True)
    (dev / "x.toml").write_text("a = 1\n")
    (deep / "site.css").write_text("p {}\n")
    extra = os.pathsep.join(["config/*/x.toml", "assets/**"])
    server = plain_server("gthread", env={"RELOADER_EXTRA_FILES": extra})
    pids = server.worker_pids()
    for changed in (dev / "x.toml", deep / "site.css"):
        write(changed, changed.read_text() + "# changed\n")
        wait_restart_for(server, changed.name)
        pids = wait_all_replaced(server, pids)
        server.warm(PLAIN_WARM)


@pytest.mark.parametrize("worker", WORKERS)
def test_preload_still_reloads(demo_server: StartGunicorn, demo_project: Path, worker: str) -> None:
    server = demo_server(worker, "--preload")
    write(demo_project / "pages" / "version.py", version_source("v2"))
    assert_fresh_everywhere(server, "/version/", "v2 pid=", DEMO_WARM)


SLOW_BOOT = """\
import os
import time
from pathlib import Path

# The first worker's import holds until the test saved a file: a save during a slow boot.
Path(f"booting-{os.getpid()}").write_text("")
deadline = time.monotonic() + 60
while not Path("go").exists() and time.monotonic() < deadline:
    time.sleep(0.05)
"""


@pytest.mark.parametrize("worker", WORKERS)
def test_preload_save_during_boot_keeps_reloading(
    plain_server: StartGunicorn, plain_project: Path, worker: str
) -> None:
    """With --preload the worker loads the app in gunicorn's fork hook, before the worker's
    signal handlers are installed: a restart then must not be lost, nor stop reloading."""
    (plain_project / "slowboot.py").write_text(SLOW_BOOT)
    app = plain_project / "plainapp.py"
    app.write_text(app.read_text().replace("import os\n", "import os\n\nimport slowboot  # noqa\n"))
    server = plain_server(worker, "--preload", warm=False, ready=None)

    def importing() -> list[int]:
        server.check_alive()
        pids = [int(p.name.removeprefix("booting-")) for p in plain_project.glob("booting-*")]
        return pids if len(pids) == server.workers else []

    booted = wait_until(
        importing, message=lambda: f"the workers to start importing:\n{server.log_tail()}"
    )
    write(plain_project / "plainversion.py", version_source("v2"))
    (plain_project / "go").write_text("")
    assert_fresh_everywhere(server, "/", "v2 pid=", PLAIN_WARM)
    write(plain_project / "plainversion.py", version_source("v3"))
    assert_fresh_everywhere(server, "/", "v3 pid=", PLAIN_WARM)
    # Whichever version they read, the workers loading during the save were replaced.
    assert not set(booted) & set(server.worker_pids()), server.log_tail()


@pytest.mark.parametrize("worker", [*WORKERS, "gevent"])
def test_plain_wsgi_app_through_wrap(
    plain_server: StartGunicorn, plain_project: Path, worker: str
) -> None:
    server = plain_server(worker)
    assert get(server.url("/")).body.startswith("v1 pid=")
    old_pids = server.worker_pids()
    write(plain_project / "plainversion.py", version_source("v2"))
    assert_fresh_everywhere(server, "/", "v2 pid=", PLAIN_WARM)
    assert_one_restart_per_worker(server, old_pids, "plainversion.py")


def test_shipped_gunicorn_config(gunicorn: StartGunicorn, demo_project: Path) -> None:
    """deploy_examples/gunicorn/gunicorn.conf.py as shipped; only bind and chdir change."""
    server = gunicorn("-c", str(GUNICORN_CONF), cwd=demo_project, warm=DEMO_WARM)
    assert len(server.worker_pids()) == 4
    assert '"GET /version/' not in server.log()
    assert get(server.url("/version/")).body.startswith("v1 pid=")
    server.wait_for_log('"GET /version/')  # access log on stdout
    write(demo_project / "pages" / "version.py", version_source("v2"))
    assert_fresh_everywhere(server, "/version/", "v2 pid=", DEMO_WARM)


def test_many_reloads_leak_nothing(plain_server: StartGunicorn, plain_project: Path) -> None:
    server = plain_server("gthread")
    version = plain_project / "plainversion.py"

    def reload(n: int) -> None:
        write(version, version_source(f"v{n}"))
        wait_until(lambda: get(server.url("/")).body.startswith(f"v{n} pid="))

    reload(2)
    arbiter_fds = fd_count(server.pid)
    for n in range(3, 23):
        reload(n)
    assert len(server.wait_workers()) == server.workers
    assert fd_count(server.pid) <= arbiter_fds + 2, "the arbiter leaks descriptors per reload"
    assert server.poll() is None


ATEXIT_HOOK = """
import atexit

# Deliberately no flush: a restarting worker must still flush stdout on its way out.
atexit.register(lambda: print(f"ATEXIT-MARKER pid={os.getpid()}"))
"""


@pytest.mark.parametrize(
    "args",
    [
        (*WORKER_ARGS["sync"], "reloader.wsgi:application"),
        (*WORKER_ARGS["gthread"], "reloader.wsgi:application"),
        ("-c", "python:reloader.gunicorn", "-w", "2", "--threads", "4"),
    ],
    ids=["sync", "gthread", "warm"],
)
def test_replaced_worker_runs_atexit_handlers(
    gunicorn: StartGunicorn, demo_project: Path, args: tuple[str, ...]
) -> None:
    """Restarting workers skip the interpreter's teardown (it delays their replacement), but
    not what a user registered to run at exit, nor the flush of what they printed."""
    wsgi = demo_project / "demo" / "wsgi.py"
    wsgi.write_text(wsgi.read_text() + ATEXIT_HOOK)
    server = gunicorn(*args, cwd=demo_project, env=DEMO_ENV, warm=DEMO_WARM, workers=2,
                      helpers=("reloader.warm",))  # fmt: skip
    old_pids = server.worker_pids()
    write(demo_project / "pages" / "version.py", version_source("v2"))
    assert_fresh_everywhere(server, "/version/", "v2 pid=", DEMO_WARM)
    for pid in old_pids:
        server.wait_for_log(f"ATEXIT-MARKER pid={pid}")
