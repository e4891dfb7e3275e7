"""The pure parts of warm mode: when the arbiter sets Django up, and what a fork hands down."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

from reloader.warm.django_setup import DjangoSetup
from reloader.warm.footprint import Footprint
from reloader.warm.reexec import StartUp
from reloader.warm.rundir import Report, RunDir
from reloader.warm.supervisor import Supervisor


def _report(pid: int, settings: str = "mysite.settings", loaded: bool = True) -> Report:
    return Report(pid=pid, loaded=loaded, django_settings=settings, modules=["django"])


def test_setup_waits_for_every_worker_to_load_the_same_project() -> None:
    setup = DjangoSetup(enabled=True)
    assert setup.due([]) is None
    assert setup.due([_report(1), _report(2, loaded=False)]) is None, "a broken load"
    assert setup.due([_report(1), _report(2, settings="")]) is None, "not Django"
    assert setup.due([_report(1), _report(2, settings="other.settings")]) is None
    assert setup.due([_report(1), _report(2)]) == _report(1)
    assert DjangoSetup(enabled=False).due([_report(1)]) is None


def test_setup_runs_once_and_notices_another_settings_module() -> None:
    setup = DjangoSetup(enabled=True)
    assert setup.other_settings([_report(1, settings="other.settings")]) is None, "not set up"
    setup.settings_module = "mysite.settings"
    assert setup.due([_report(1)]) is None, "already set up"
    assert setup.other_settings([_report(1), _report(2, settings="")]) is None
    assert setup.other_settings([_report(1, settings="other.settings")]) == "other.settings"


def test_footprint_names_a_thread_and_a_descriptor(tmp_path: Path) -> None:
    footprint = Footprint()
    assert footprint.grown() is None
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert footprint.grown() == "starts a thread"
    finally:
        stop.set()
        thread.join()
    fd = os.open(tmp_path / "log", os.O_CREAT | os.O_WRONLY | os.O_APPEND)
    try:
        assert footprint.grown() == "opens a file descriptor"
        assert footprint.grown(allowed_fds={fd}) is None
    finally:
        os.close(fd)


def test_reports_round_trip(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    report = Report(
        pid=7,
        started_ns=5,
        files=["/a.py"],
        patterns=[("/t", "*.html", True)],
        modules=["django"],
        loaded=False,
        django_settings="s",
        sys_path=["/p"],
    )
    run.write_report("worker", report)
    assert run.worker_report(7) == report
    assert list(run.reports("worker")) == [report]
    run.remove_worker(7)
    assert run.worker_report(7) is None


def _next_line(stream: IO[str], timeout: float = 10.0) -> str:
    """The next line, or "" if none comes within `timeout` (a signal never sent)."""
    ready, _, _ = select.select([stream], [], [], timeout)
    return stream.readline() if ready else ""


TRAP_TERM = "trap 'echo term' TERM; echo ready; while :; do sleep 0.05; done"


def test_a_reused_pid_is_restarted_again(tmp_path: Path) -> None:
    """The supervisor forgets a worker it stopped once its report is gone: a new worker that
    gets the same pid (reported with its own start time) is restarted on the next change."""
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    source = tmp_path / "views.py"
    source.write_text("A = 1\n")
    # A real process standing for the worker; it survives SIGTERM and says it got one.
    worker = subprocess.Popen(["sh", "-c", TRAP_TERM], stdout=subprocess.PIPE, text=True)
    assert worker.stdout is not None
    try:
        assert _next_line(worker.stdout) == "ready\n"
        supervisor = Supervisor(run, arbiter_pid=os.getpid())
        for started_ns in (1, 2):  # the second report: same pid, a new worker
            run.remove_worker(worker.pid)
            run.write_report("worker", Report(pid=worker.pid, started_ns=started_ns))
            report_path = run.path / f"worker-{worker.pid}.json"
            source.write_text(f"A = {started_ns + 1}\n")
            supervisor.changed({report_path, source})
            assert _next_line(worker.stdout) == "term\n", f"round {started_ns}: no SIGTERM"
    finally:
        worker.kill()
        worker.wait()


def test_a_cold_arbiter_keeps_no_report_of_exited_workers(tmp_path: Path) -> None:
    """With gevent or eventlet nothing warms up, so nothing would ever read (and clear) the
    reports of exited workers: kept, they would grow with every restart."""
    from types import SimpleNamespace

    from reloader.warm.arbiter import WarmArbiter

    run = RunDir(tmp_path)
    for warm in (False, True):
        arbiter = SimpleNamespace(run=run, warm=warm, exited=[])
        for pid in (101, 102, 103):
            run.write_report("worker", Report(pid=pid))
            WarmArbiter.worker_exited(arbiter, pid)  # type: ignore[arg-type]
        assert len(arbiter.exited) == (3 if warm else 0)
        assert not list(run.reports("worker")), "each exited worker's report is removed"


def test_the_report_written_last_is_the_one_that_saw_the_most(tmp_path: Path) -> None:
    """gthread: two request threads report at once. The first one has made its plan, then
    the second imports a module and reports it; the first one's write must not come last,
    or that module is never watched."""
    from reloader.warm.worker import Reporter
    from reloader.watching import Sources

    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    lazy = tmp_path / "lazy.py"
    lazy.write_text("")
    sources = Sources(cwd=tmp_path)
    reporter = Reporter(run, sources, started_ns=1, loaded=True, environ={})
    first_writing, second_wrote = threading.Event(), threading.Event()
    write = run.write_report

    def slow_first_write(kind: str, report: Report) -> None:
        if threading.current_thread().name == "first":
            first_writing.set()
            # Without the lock, the second report is written meanwhile; with it, the
            # second thread waits for this one, and the wait runs out.
            second_wrote.wait(timeout=0.5)
        write(kind, report)
        if threading.current_thread().name == "second":
            second_wrote.set()

    run.write_report = slow_first_write  # type: ignore[method-assign]
    first = threading.Thread(target=reporter.report, name="first")
    first.start()

    def import_then_report() -> None:
        first_writing.wait(timeout=10)
        sources.add_files([lazy])  # what a lazy import adds to the plan
        reporter.report()

    second = threading.Thread(target=import_then_report, name="second")
    second.start()
    first.join(timeout=10)
    second.join(timeout=10)
    final = run.worker_report(os.getpid())
    assert final is not None and str(lazy) in final.files


def test_a_save_found_by_a_late_report_stops_the_workers_that_reported_before(
    tmp_path: Path,
) -> None:
    """A save made while the watch was being rebuilt brings no event: the supervisor learns of
    it from the next worker's report (imported, then saved). The workers that reported before
    and started before the save hold it too: they stop at the same moment, not at the next
    event, which would let the fresh worker answer first and them answer stale after it."""
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    source = tmp_path / "views.py"
    source.write_text("A = 1\n")
    workers = [
        subprocess.Popen(["sh", "-c", TRAP_TERM], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None and _next_line(worker.stdout) == "ready\n"
        first, late = workers
        supervisor = Supervisor(run, arbiter_pid=os.getpid())
        files = [str(source)]
        run.write_report("worker", Report(pid=first.pid, started_ns=time.time_ns(), files=files))
        supervisor.changed({run.path / f"worker-{first.pid}.json"})
        started_ns = time.time_ns()
        source.write_text("A = 2\n")  # no event: the watch is being rebuilt
        run.write_report("worker", Report(pid=late.pid, started_ns=started_ns, files=files))
        supervisor.changed({run.path / f"worker-{late.pid}.json"})
        for worker in workers:
            assert worker.stdout is not None
            assert _next_line(worker.stdout) == "term\n", f"worker {worker.pid}: no SIGTERM"
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()


def test_a_reexec_is_tried_first_only_when_a_file_of_the_start_up_changed(
    tmp_path: Path,
) -> None:
    startup = StartUp()
    assert Path(os.__file__) in startup.files and Path(sys.executable) in startup.files
    if startup.started_ns is None:  # no /proc: every re-exec is tried
        assert startup.changed()
        return
    assert startup.started_ns <= time.time_ns()
    startup.files = frozenset({Path(os.__file__)})  # installed before this process began
    assert not startup.changed()
    config = tmp_path / "gunicorn_conf.py"
    config.write_text("workers = \n")  # a half-typed configuration, saved since
    startup.files = frozenset({Path(os.__file__), config})
    assert startup.changed()
    config.unlink()
    assert startup.changed(), "a file gone breaks the start too"


def test_replacement_requests_are_taken_once(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    run.request_replacement(4711)
    run.request_replacement(4712)
    run.write_report("worker", Report(pid=4713, started_ns=1, modules=[], files=[]))
    assert sorted(run.take_replacement_requests()) == [4711, 4712]
    assert run.take_replacement_requests() == []
    assert [r.pid for r in run.reports("worker")] == [4713]
