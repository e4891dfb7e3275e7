"""The arbiter's side of a warm server: start the supervisor (again, if it dies), warm up
(before each fork, and when the supervisor asks), re-exec on request. Everything here runs in
the arbiter's main thread, in gunicorn's hooks or in its main loop: the supervisor's signal is
queued like gunicorn's own signals and handled where gunicorn handles those, never where it
happened to interrupt the arbiter (between a fork and gunicorn recording the new worker, or
while it shuts down)."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..integrations.identities import renew_process_identities
from ..log import make_visible
from ..settings import CARRY_VARIABLE, SETUP_FAILED_VARIABLE, WARM_DJANGO, read_options
from ..watching import Sources
from ..watching.plan import change_ns
from ..watching.sources import module_file
from .django_setup import DjangoSetup, SetupProblem
from .preload import Preloader
from .reexec import (
    ORPHANS_ENV,
    StartUp,
    carried_orphans,
    exec_new_image,
    reap_orphans,
    start_problem,
)
from .rundir import ENV, Report, RunDir
from .supervisor import SIGNAL

__all__ = ["WarmArbiter"]

logger = logging.getLogger("reloader")

CARRY_ENV = CARRY_VARIABLE
"""Set by a re-exec for the new arbiter: the run directory of the one it replaces, whose
worker reports say what to import before the first fork, so the first workers are warm."""

SETUP_FAILED_ENV = SETUP_FAILED_VARIABLE
"""Set by a re-exec after `django.setup()` raised here: when it failed. If the new image's
workers then load cleanly and nothing was saved since, the failure is the arbiter's alone."""

TRANSIENT_ENV = (CARRY_ENV, SETUP_FAILED_ENV, ORPHANS_ENV, ENV, "GUNICORN_PID", "GUNICORN_FD")
"""What this package and gunicorn's re-exec protocol add to the environment: not the user's."""

COLD_WORKERS = ("gevent", "eventlet", "tornado")
"""Worker classes that must patch the standard library before anything imports it: nothing is
preloaded for them, the supervisor still watches."""


class WarmArbiter:
    def __init__(self, server: Any) -> None:
        self.server = server
        self.pid = os.getpid()
        # The environment the user started the server with, for every re-exec: the one the
        # arbiter has now may have been changed by what it imported (`load_dotenv()`), and
        # `load_dotenv(override=False)` in a new image would then keep the old values.
        self.environ = {k: v for k, v in os.environ.items() if k not in TRANSIENT_ENV}
        self.startup = StartUp()
        worker_class = str(getattr(server.cfg, "worker_class_str", ""))
        self.warm = not any(name in worker_class for name in COLD_WORKERS)
        # Before anything is created: a bad value stops the server here.
        self.django = DjangoSetup(self.warm and WARM_DJANGO.read(None, os.environ))
        failed = os.environ.pop(SETUP_FAILED_ENV, "")
        self.setup_failed_ns, _, self.setup_failure = failed.partition(" ")
        self.run = RunDir.create()
        self._give_run_dir_to_workers()
        self.preloader = Preloader()
        self.supervisor: subprocess.Popen[bytes] | None = None
        self.supervisor_started_ns = 0
        self._warming = False
        self.exited = _carried_reports()
        """Reports of workers gone since the last warm-up: when every worker restarts at once,
        the arbiter forks the first new one after the last old one exited."""
        self.carried = bool(self.exited)
        self.orphans = carried_orphans()
        self.extra_files: set[str] = set()
        """The extra files the workers watch (their options: the environment's or wrap()'s),
        as of the reports Django was set up from."""

    def start(self) -> None:
        make_visible()
        read_options({})  # a bad RELOADER_* value stops the server here, not in every worker
        os.environ[ENV] = str(self.run.path)
        self._report(time.time_ns())
        self._start_supervisor()
        # Queued like gunicorn's own signals; its main loop calls `handle_urg`.
        signal.signal(SIGNAL, self.server.signal)
        self.server.handle_urg = self._on_request
        # gunicorn calls `handle_<name>`, the name SIG_NAMES gives: "cld" on Linux.
        handler = f"handle_{self.server.SIG_NAMES[signal.SIGCHLD]}"
        reap: Callable[[], None] = getattr(self.server, handler)
        setattr(self.server, handler, lambda: self._on_child_exit(reap))
        # What the arbiter imported is in every worker; what tells processes apart must not be.
        os.register_at_fork(after_in_child=renew_process_identities)
        mode = "workers are forked warm" if self.warm else "nothing is preloaded for it"
        assert self.supervisor is not None
        logger.info("one watcher for the server (pid %d); %s", self.supervisor.pid, mode)

    def _give_run_dir_to_workers(self) -> None:
        """With `--user`, workers drop to that user and must still write their reports."""
        uid, gid = getattr(self.server.cfg, "uid", None), getattr(self.server.cfg, "gid", None)
        if isinstance(uid, int) and uid != os.geteuid():
            os.chown(self.run.path, uid, gid if isinstance(gid, int) else -1)

    def _start_supervisor(self, since_ns: int | None = None) -> None:
        self.supervisor_started_ns = time.time_ns()
        # What is saved while its interpreter starts counts too: a worker may have loaded the
        # file before, and the supervisor reads the reports before it watches.
        since = self.supervisor_started_ns if since_ns is None else since_ns
        argv = [
            sys.executable,
            "-m",
            "reloader.warm",
            str(self.run.path),
            str(self.pid),
            str(since),
        ]
        # Ctrl-C in a terminal signals the whole process group, so the supervisor too, even
        # while its interpreter starts: a KeyboardInterrupt traceback among gunicorn's
        # shutdown lines. Stopping it is the arbiter's job (on_exit), so it starts with
        # SIGINT blocked, a mask it inherits; one meant for the arbiter meanwhile waits.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            self.supervisor = subprocess.Popen(argv)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)

    def before_fork(self) -> None:
        """gunicorn's pre_fork: the first safe point after the new image's signal handlers
        are in place, and the moment to make sure what the next worker needs is there."""
        self.orphans = reap_orphans(self.orphans)
        self._check_run_dir()
        self.warm_up()

    def _on_child_exit(self, reap: Callable[[], None]) -> None:
        # Before gunicorn's waitpid(-1), which would take the supervisor's exit status.
        self._check_supervisor()
        reap()
        self.orphans = reap_orphans(self.orphans)

    def _check_supervisor(self) -> None:
        supervisor = self.supervisor
        if supervisor is None or supervisor.poll() is None:
            return
        code = supervisor.returncode
        how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited ({code})"
        logger.error(
            "the watcher process %d %s: starting a new one, which looks for saves made "
            "since it started",
            supervisor.pid,
            how,
        )
        self._start_supervisor(since_ns=self.supervisor_started_ns)

    def _check_run_dir(self) -> None:
        if not self.run.recreate():
            return
        logger.error(
            "the run directory %s was removed (a temp cleaner?): made it again; restarting "
            "the workers, so that they report what to watch",
            self.run.path,
        )
        self._give_run_dir_to_workers()
        self._report(time.time_ns())
        self.server.kill_workers(signal.SIGTERM)

    def warm_up(self) -> None:
        """Import what the workers reported, so the next one starts with it done. Called
        before each fork, and when the supervisor asks."""
        if not self.warm or self._warming:
            return
        self._warming = True
        try:
            self._warm_up()
        finally:
            self._warming = False

    def _warm_up(self) -> None:
        started_ns = time.time_ns()
        reports = [*self.run.reports("worker"), *self.exited]
        carried, self.carried = self.carried, False
        self.exited = []
        other = self.django.other_settings(reports)
        if other is not None:
            self.reexec(f"a worker runs Django with {other}", carry=False)
            return
        grown = False
        report = self.django.due(reports)
        if report is not None and self._failed_before(reports):
            self._leave_setup_to_workers(f"raised {self.setup_failure}", reexec=False)
            report = None
        if report is not None:
            problem = self.django.run(report)
            if problem is not None:
                self._setup_failed(problem, reports, carried)
                return
            seconds = (time.time_ns() - started_ns) / 1e9
            logger.info(
                "Django set up in the arbiter (%s, %.2f s): workers are forked with "
                "settings and models loaded",
                report.django_settings,
                seconds,
            )
            # What failed before the apps were ready imports now.
            self.preloader.refused.clear()
            self.extra_files = {e for r in reports for e in r.extra_files}
            grown = True
        names = dict.fromkeys(n for r in reports for n in r.modules)
        if names and self.preloader.preload(names):
            grown = True
        if grown:
            self._report(started_ns)

    def _failed_before(self, reports: list[Report]) -> bool:
        """Setup raised in the image before this one, and the workers, which loaded cleanly,
        loaded nothing saved since: it would raise again, here only."""
        if not self.setup_failed_ns.isdigit():
            return False
        return not _changed_since(reports, int(self.setup_failed_ns))

    def _setup_failed(self, problem: SetupProblem, reports: list[Report], carried: bool) -> None:
        """`populate()` cannot be undone: start afresh, at most once more for one cause."""
        if not problem.raised:
            self._leave_setup_to_workers(problem.what, reexec=True)
        elif carried or _changed_since(reports, min(r.started_ns for r in reports)):
            # Perhaps a module broken by the save that brought us here, which the workers
            # will show; the next image tells it from a failure of the arbiter's own.
            failed = f"{time.time_ns()} {problem.what}"
            self.reexec(
                f"django.setup() failed: {problem.what}", {SETUP_FAILED_ENV: failed}, carry=False
            )
        else:
            self._leave_setup_to_workers(f"raises {problem.what}", reexec=True)

    def _leave_setup_to_workers(self, why: str, reexec: bool) -> None:
        """For the rest of this server's life, as RELOADER_WARM_DJANGO=0 would."""
        logger.warning(
            "django.setup() in the arbiter %s: leaving it to the workers for this server's "
            "life (as RELOADER_WARM_DJANGO=0 does)%s",
            why,
            ""
            if not why.startswith("raise")
            else ". The workers load: something their WSGI "
            "file does before get_wsgi_application() is missing in the arbiter",
        )
        self.environ[WARM_DJANGO.env] = "0"
        self.django.enabled = False
        if reexec:
            self.reexec("Django's setup is left to the workers", carry=False)

    def _report(self, started_ns: int) -> None:
        """Tell the supervisor the files held here; those new in this report were imported
        after `started_ns`, so a save since then means they are stale already."""
        files = {
            str(path)
            for module in list(sys.modules.values())
            if module is not None and (path := module_file(module)) is not None
        }
        config = getattr(self.server.cfg, "config", None)
        if isinstance(config, str) and os.path.isfile(config):
            files.add(os.path.abspath(config))
        patterns = []
        if self.django.settings_module is not None:
            # The settings held here may have read any of them, as they read what setup
            # opened: a change needs a new arbiter, not only new workers.
            files.update(str(f) for f in self.django.opened)
            extra_files, extra_patterns = Sources(sorted(self.extra_files)).declared()
            files.update(str(f) for f in extra_files)
            patterns = sorted((str(p.directory), p.glob, p.recursive) for p in extra_patterns)
        report = Report(pid=self.pid, started_ns=started_ns, files=sorted(files), patterns=patterns)
        self.run.write_report("arbiter", report)

    def worker_exited(self, pid: int) -> None:
        report = self.run.worker_report(pid)
        if report is not None and self.warm:  # only a warm-up reads (and clears) them
            self.exited.append(report)
        self.run.remove_worker(pid)

    def stop(self) -> None:
        self._stop_supervisor()
        shutil.rmtree(self.run.path, ignore_errors=True)

    def _stop_supervisor(self) -> None:
        supervisor, self.supervisor = self.supervisor, None
        if supervisor is None or supervisor.poll() is not None:
            return
        supervisor.terminate()
        try:
            supervisor.wait(timeout=5)
        except subprocess.TimeoutExpired:
            supervisor.kill()
            supervisor.wait()

    def _on_request(self) -> None:
        """The supervisor's signal, handled in gunicorn's main loop."""
        try:
            self._check_run_dir()
            if self.run.take_reexec_request():
                self.reexec("code it imported changed")
            self.warm_up()
        except Exception:
            logger.exception("handling the watcher's request failed; warming up before forking")

    def reexec(
        self, why: str, environ_changes: dict[str, str] | None = None, carry: bool = True
    ) -> None:
        """Stop the workers gracefully and become a fresh gunicorn (see `reexec.py`); with
        `carry`, the new arbiter imports what this one held before it forks. Returns only
        when the new image would not start: this one serves on."""
        arbiter = self.server
        environ = {**self.environ, **(environ_changes or {})}
        tried = environ_changes or self.startup.changed()
        problem = start_problem(environ, arbiter.START_CTX["cwd"]) if tried else None
        if problem is not None:
            logger.error(
                "not re-executing the arbiter (%s): the new gunicorn would not start: %s. "
                "Serving on with the old one; the next save of the file re-executes it",
                why,
                problem,
            )
            return
        logger.info("re-executing the arbiter %d: %s", self.pid, why)
        arbiter.kill_workers(signal.SIGTERM)
        self._stop_supervisor()  # waited for: it would be the new image's zombie
        if carry:
            environ[CARRY_ENV] = str(self.run.path)
        else:
            self.stop()
        stop_control = getattr(arbiter, "_stop_control_server", None)
        if callable(stop_control):
            stop_control()
        exec_new_image(arbiter, environ, [*arbiter.WORKERS, *self.orphans])


def _changed_since(reports: list[Report], since_ns: int) -> bool:
    """Whether a file the workers loaded changed after `since_ns`."""
    files = {f for r in reports for f in r.files}
    return any(change_ns(Path(f)) > since_ns for f in files)


def _carried_reports() -> list[Report]:
    """The reports a re-exec carried over, if any; their directory is removed, so workers of
    the replaced arbiter that still finish requests report nowhere."""
    path = os.environ.pop(CARRY_ENV, None)
    if not path:
        return []
    reports = list(RunDir(Path(path)).reports("worker"))
    shutil.rmtree(path, ignore_errors=True)
    return reports
