"""What the processes of one server share: their directory, the refresh log, the last restart
(bursts of saves) and when each module was read."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reloader.bursts import QUIET_NS, BurstWatch, Restart, record_restart
from reloader.importclock import ImportClock
from reloader.peers import PREFIX, FollowRestarts, Peers
from reloader.refreshlog import RefreshLog
from reloader.rendezvous import process_directory, server_directory, start_ticks
from reloader.watching import ChangeFilter, Sources


@pytest.fixture
def temp_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def test_processes_serving_the_same_find_the_same_directory(temp_root: Path) -> None:
    first = server_directory("demo.wsgi:application")
    assert first is not None and first.is_dir()
    assert server_directory("demo.wsgi:application") == first
    assert server_directory("other.wsgi:application") != first
    assert first.parent.stat().st_mode & 0o777 == 0o700


def test_directories_of_servers_gone_are_swept(temp_root: Path) -> None:
    root = temp_root / f"reloader-{os.geteuid()}"
    root.mkdir(mode=0o700)
    reused = root / f"{os.getppid()}-1-deadbeef"  # our parent's pid, another start time
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()  # reaped: no process has its pid now
    dead = root / f"{ended.pid}-0-deadbeef"
    for directory in (reused, dead):
        directory.mkdir()
    server_directory("demo.wsgi:application")
    assert not reused.exists() and not dead.exists()


def test_run_directories_of_processes_gone_are_swept(temp_root: Path) -> None:
    """Warm mode's: an arbiter killed (SIGKILL) cannot remove its own."""
    prefix = "reloader-warm-"
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    dead = temp_root / f"{prefix}{ended.pid}-0-abcd"
    reused = temp_root / f"{prefix}{os.getppid()}-1-abcd"
    live = temp_root / f"{prefix}{os.getppid()}-{start_ticks(os.getppid())}-abcd"
    unrelated = temp_root / f"reloader-{ended.pid}-0-abcd"  # not a run directory's name
    for directory in (dead, reused, live, unrelated):
        directory.mkdir()
    linked = temp_root / f"{prefix}{ended.pid}-0-link"
    linked.symlink_to(live)  # not followed: what it points to stays
    made = process_directory(prefix)
    assert made.is_dir() and made.name.startswith(f"{prefix}{os.getpid()}-")
    assert made.stat().st_mode & 0o777 == 0o700
    assert not dead.exists() and not reused.exists()
    assert live.is_dir() and unrelated.is_dir() and linked.is_symlink()
    assert process_directory(prefix) != made and made.is_dir(), "ours is alive"


def test_a_root_that_is_not_ours_shares_nothing(temp_root: Path) -> None:
    (temp_root / f"reloader-{os.geteuid()}").symlink_to(temp_root)
    assert server_directory("demo.wsgi:application") is None


@pytest.fixture
def template(tmp_path: Path) -> Path:
    path = tmp_path / "templates" / "page.html"
    path.parent.mkdir()
    path.write_text("v1")
    return path


def test_a_published_save_is_applied_by_every_other_process_once(
    tmp_path: Path, template: Path
) -> None:
    ours, theirs = RefreshLog(tmp_path), RefreshLog(tmp_path)
    applied: list[set[Path]] = []
    theirs.follow(applied.append)
    assert not theirs.behind()

    ours.publish([template])
    assert theirs.behind()
    theirs.catch_up()
    assert applied == [{template}] and not theirs.behind()

    # The same save seen again, by us or by them: nothing new.
    ours.publish([template])
    theirs.publish([template])
    assert not theirs.behind()
    # The next save of the file is news again.
    template.write_text("v2 longer")
    theirs.publish([template])
    ours.catch_up()
    assert not ours.behind()
    assert RefreshLog(tmp_path).applied == ours.applied  # a new process starts caught up


def test_a_request_waits_for_the_refresh_before_it_is_served(
    tmp_path: Path, template: Path
) -> None:
    ours, theirs = RefreshLog(tmp_path), RefreshLog(tmp_path)
    events: list[str] = []
    theirs.follow(lambda paths: events.append("refreshed"))
    app = theirs.wrap(lambda environ, start_response: events.append("served"))
    app({}, None)
    ours.publish([template])
    app({}, None)
    app({}, None)
    assert events == ["served", "refreshed", "served", "served"]


def test_a_gone_file_is_not_published(tmp_path: Path) -> None:
    log = RefreshLog(tmp_path)
    log.publish([tmp_path / "missing.html"])
    assert log.path.stat().st_size == 0


def watch(directory: Path, **kwargs: float) -> BurstWatch:
    found = BurstWatch.load(directory, ChangeFilter(), **kwargs)
    assert found is not None, "a recent restart was recorded"
    return found


def test_a_single_save_waits_for_nothing(tmp_path: Path) -> None:
    module = tmp_path / "views.py"
    module.write_text("A = 1\n")
    (tmp_path / "urls.py").write_text("B = 1\n")  # a save of the same moment: the same save
    record_restart(tmp_path, [module])
    record_restart(tmp_path, [tmp_path / "urls.py"])  # the other worker's batch of it
    started = time.monotonic()
    burst = watch(tmp_path)
    burst.settle()
    assert burst.waited == 0 and time.monotonic() - started < 0.1


def test_no_recent_restart_means_no_burst(tmp_path: Path) -> None:
    assert BurstWatch.load(tmp_path, ChangeFilter()) is None
    assert BurstWatch.load(None, ChangeFilter()) is None


def test_a_save_after_the_restart_waits_until_quiet(tmp_path: Path) -> None:
    first, second = tmp_path / "a.py", tmp_path / "b.py"
    first.write_text("A = 1\n")
    record_restart(tmp_path, [first])
    time.sleep(0.1)  # the burst's next save comes later
    second.write_text("B = 1\n")
    burst = watch(tmp_path)
    burst.settle()
    assert time.time_ns() - os.stat(second).st_mtime_ns >= QUIET_NS
    assert burst.waited > 0


@pytest.mark.parametrize("told", [True, False])
def test_a_burst_that_moved_on_to_another_package_is_waited_for(tmp_path: Path, told: bool) -> None:
    first_package, next_package = tmp_path / "a", tmp_path / "b"
    first_package.mkdir()
    next_package.mkdir()
    first = first_package / "views.py"
    first.write_text("A = 1\n")
    project = [first_package, next_package] if told else []
    record_restart(tmp_path, [first], project)
    time.sleep(0.1)
    (next_package / "views.py").write_text("B = 1\n")  # the formatter's next package
    burst = watch(tmp_path)
    burst.settle()
    # Told of the project's directories, the burst is seen wherever it went on.
    assert (burst.waited > 0) is told


def test_restarts_soon_after_one_another_are_one_burst(tmp_path: Path) -> None:
    first, second = tmp_path / "a.py", tmp_path / "b.py"
    first.write_text("A = 1\n")
    record_restart(tmp_path, [first])
    time.sleep(0.1)
    second.write_text("B = 1\n")
    record_restart(tmp_path, [second])  # nothing newer than this restart's own save
    burst = watch(tmp_path)
    burst.settle()
    assert burst.waited > 0


def test_ignored_files_are_no_burst(tmp_path: Path) -> None:
    module = tmp_path / "a.py"
    module.write_text("A = 1\n")
    record_restart(tmp_path, [module])
    time.sleep(0.1)
    (tmp_path / "notes.txt").write_text("not code")
    (tmp_path / "a.py~").write_text("backup")
    burst = watch(tmp_path)
    burst.settle()
    assert burst.waited == 0


@pytest.fixture
def endless_burst(tmp_path: Path) -> Iterator[Path]:
    module = tmp_path / "a.py"
    module.write_text("A = 0\n")
    stop = threading.Event()

    def save() -> None:
        n = 0
        while not stop.wait(0.1):
            n += 1
            module.write_text(f"A = {n}\n")

    saver = threading.Thread(target=save, daemon=True)
    saver.start()
    yield module
    stop.set()
    saver.join()


def test_a_burst_that_never_ends_is_waited_for_a_bounded_time(
    tmp_path: Path, endless_burst: Path
) -> None:
    record_restart(tmp_path, [endless_burst])
    time.sleep(0.15)
    started = time.monotonic()
    watch(tmp_path, max_wait=0.5).settle()
    assert 0.3 < time.monotonic() - started < 1.0


def test_a_module_saved_before_its_import_is_not_stale(tmp_path: Path) -> None:
    before, after = tmp_path / "shared_before.py", tmp_path / "shared_after.py"
    before.write_text("X = 1\n")
    after.write_text("X = 1\n")
    started_ns = time.time_ns()
    time.sleep(0.05)
    before.write_text("X = 2\n")  # saved while the process loads, before it imports it
    time.sleep(0.05)
    sources = Sources(cwd=tmp_path)
    clock = ImportClock()
    sources.import_times = clock.times
    sys.path.insert(0, str(tmp_path))
    try:
        with clock:
            import shared_after  # noqa: F401
            import shared_before  # noqa: F401
        time.sleep(0.05)
        after.write_text("X = 3\n")  # saved after the import read it
        late = sources.saved_since_read(sources.changes(), started_ns)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("shared_before", None)
        sys.modules.pop("shared_after", None)
    assert late == {after}
    assert clock not in sys.meta_path


def test_a_request_beside_the_look_that_finds_a_restart_waits_for_its_verdict(
    tmp_path: Path,
) -> None:
    """Two requests on two threads find the same new restart record: the second is served
    only once the first has judged it (and, in a process behind, outdated it)."""
    judging, verdict = threading.Event(), threading.Event()
    order: list[str] = []

    def on_restart(restart: Restart) -> None:
        judging.set()
        verdict.wait(10)
        order.append("judged")

    follow = FollowRestarts(tmp_path, on_restart)
    app = follow.wrap(lambda environ, start_response: order.append("served"))
    record_restart(tmp_path, [tmp_path / "views.py"])
    first = threading.Thread(target=app, args=({}, None))
    first.start()
    assert judging.wait(10)
    second = threading.Thread(target=app, args=({}, None))
    second.start()
    second.join(0.3)
    assert order == []  # the second waits for the verdict rather than going on
    verdict.set()
    first.join(10)
    second.join(10)
    assert order == ["judged", "served", "served"]


def test_a_peer_current_with_a_save_is_one_that_may_have_answered_with_it(tmp_path: Path) -> None:
    me, other = Peers(tmp_path), Peers(tmp_path)
    other.path = tmp_path / f"{PREFIX}{os.getppid()}"  # a live process that is not this one
    other._ticks = start_ticks(os.getppid()) or 0
    other.enter(100)
    assert me.behind(200) == [os.getppid()] and not me.current_elsewhere(200)
    other.enter(200)
    assert me.behind(200) == [] and me.current_elsewhere(200)
    other.withdraw()
    assert not me.current_elsewhere(200)
