"""The arbiter's side of a warm server: start the supervisor, warm up (before each fork, and
when the supervisor asks), re-exec on request. Everything here runs in the arbiter's main
thread: in gunicorn's hooks, or in a signal handler while gunicorn waits."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

from ..integrations.identities import renew_process_identities
from ..log import make_visible
from ..settings import CARRY_VARIABLE, WARM_DJANGO, read_options
from ..watching.sources import module_file
from .django_setup import DjangoSetup, SetupProblem
from .preload import Preloader
from .rundir import ENV, WARM_UP, Report, RunDir
from .supervisor import SIGNAL

__all__ = ["WarmArbiter"]

logger = logging.getLogger("reloader")

CARRY_ENV = CARRY_VARIABLE
"""Set by a re-exec for the new arbiter: the run directory of the one it replaces, whose
worker reports say what to import before the first fork, so the first workers are warm."""

IDLE_WAITS = ("sleep", "wait_for_signals")
"""Where gunicorn's arbiter waits for something to do (22-23: `sleep`, 24 on:
`wait_for_signals`)."""

COLD_WORKERS = ("gevent", "eventlet", "tornado")
"""Worker classes that must patch the standard library before anything imports it: nothing is
preloaded for them, the supervisor still watches."""


class WarmArbiter:
    def __init__(self, server: Any) -> None:
        self.server = server
        self.pid = os.getpid()
        worker_class = str(getattr(server.cfg, "worker_class_str", ""))
        self.warm = not any(name in worker_class for name in COLD_WORKERS)
        # Before anything is created: a bad value stops the server here.
        self.django = DjangoSetup(self.warm and WARM_DJANGO.read(None, os.environ))
        self.run = RunDir.create()
        self.preloader = Preloader()
        self.supervisor: subprocess.Popen[bytes] | None = None
        self._warming = False
        self.exited = _carried_reports()
        """Reports of workers gone since the last warm-up: when every worker restarts at once,
        the arbiter forks the first new one after the last old one exited."""

    def start(self) -> None:
        make_visible()
        read_options({})  # a bad RELOADER_* value stops the server here, not in every worker
        os.environ[ENV] = str(self.run.path)
        self._report(time.time_ns())
        # Ctrl-C in a terminal signals the whole process group, so the supervisor too, even
        # while its interpreter starts: a KeyboardInterrupt traceback among gunicorn's
        # shutdown lines. Stopping it is the arbiter's job (on_exit), so it starts with
        # SIGINT blocked, a mask it inherits; one meant for the arbiter meanwhile waits.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            self.supervisor = subprocess.Popen(
                [sys.executable, "-m", "reloader.warm", str(self.run.path), str(self.pid)]
            )
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        signal.signal(SIGNAL, self._on_signal)
        # What the arbiter imported is in every worker; what tells processes apart must not be.
        os.register_at_fork(after_in_child=renew_process_identities)
        mode = "workers are forked warm" if self.warm else "nothing is preloaded for it"
        logger.info("one watcher for the server (pid %d); %s", self.supervisor.pid, mode)

    def warm_up(self) -> None:
        """Import what the workers reported, so the next one starts with it done. Called
        before each fork, and when the supervisor asks while the arbiter idles."""
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
        self.exited = []
        other = self.django.other_settings(reports)
        if other is not None:
            self.reexec(f"a worker runs Django with {other}", carry=False)
        grown = False
        report = self.django.due(reports)
        if report is not None:
            problem = self.django.run(report)
            if problem is not None:
                self._setup_failed(problem)
            seconds = (time.time_ns() - started_ns) / 1e9
            logger.info(
                "Django set up in the arbiter (%s, %.2f s): workers are forked with "
                "settings and models loaded",
                report.django_settings,
                seconds,
            )
            # What failed before the apps were ready imports now.
            self.preloader.refused.clear()
            grown = True
        names = dict.fromkeys(n for r in reports for n in r.modules)
        if names and self.preloader.preload(names):
            grown = True
        if grown:
            self._report(started_ns)

    def _setup_failed(self, problem: SetupProblem) -> NoReturn:
        """`populate()` cannot be undone: start afresh. A setup that raised may have met a
        broken module, which the workers will show; one that misbehaved would do it again."""
        if problem.raised:
            self.reexec(f"django.setup() failed: {problem.what}", carry=False)
        logger.warning("django.setup() in the arbiter %s: leaving it to the workers", problem.what)
        self.reexec("Django's setup misbehaved", {WARM_DJANGO.env: "0"}, carry=False)

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
        report = Report(pid=self.pid, started_ns=started_ns, files=sorted(files))
        self.run.write_report("arbiter", report)

    def worker_exited(self, pid: int) -> None:
        report = self.run.worker_report(pid)
        if report is not None:
            self.exited.append(report)
        self.run.remove_worker(pid)

    def stop(self) -> None:
        self._stop_supervisor()
        shutil.rmtree(self.run.path, ignore_errors=True)

    def _stop_supervisor(self) -> None:
        if self.supervisor is not None and self.supervisor.poll() is None:
            self.supervisor.terminate()

    def _on_signal(self, _signum: int, frame: FrameType | None) -> None:
        if os.getpid() != self.pid:
            return  # a worker that has not installed its own handler yet
        if self.run.arbiter_request() != WARM_UP:
            self.reexec("code it imported changed")
        # Importing from a signal handler is safe only where gunicorn was merely waiting;
        # elsewhere the next fork warms up anyway.
        if _gunicorn_idle(frame):
            try:
                self.warm_up()
            except Exception:
                logger.exception("warming up the arbiter failed; it warms up before forking")

    def reexec(
        self, why: str, environ_changes: dict[str, str] | None = None, carry: bool = True
    ) -> NoReturn:
        """Stop the workers gracefully and become a fresh gunicorn: same pid, same listening
        sockets (connections wait in their backlog). With `carry`, the new arbiter imports
        what this one held before it forks. Does not return."""
        arbiter = self.server
        logger.info("re-executing the arbiter %d: %s", self.pid, why)
        arbiter.kill_workers(signal.SIGTERM)
        environ = {**os.environ, **(environ_changes or {})}
        environ.pop(ENV, None)
        if carry:
            self._stop_supervisor()
            environ[CARRY_ENV] = str(self.run.path)
        else:
            self.stop()
        stop_control = getattr(arbiter, "_stop_control_server", None)
        if callable(stop_control):
            stop_control()
        # gunicorn's own re-exec protocol (USR2): take over these sockets, then find the
        # "old master" (ourselves) gone and promote itself.
        environ["GUNICORN_PID"] = str(self.pid)
        environ["GUNICORN_FD"] = ",".join(str(s.fileno()) for s in arbiter.LISTENERS)
        for listener in arbiter.LISTENERS:
            os.set_inheritable(listener.fileno(), True)
        os.chdir(arbiter.START_CTX["cwd"])
        # The command line as typed: gunicorn's own record of it turns `python -m gunicorn`
        # into a run of gunicorn/__main__.py, which puts gunicorn's package dir on sys.path.
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], environ)


def _carried_reports() -> list[Report]:
    """The reports a re-exec carried over, if any; their directory is removed, so workers of
    the replaced arbiter that still finish requests report nowhere."""
    path = os.environ.pop(CARRY_ENV, None)
    if not path:
        return []
    reports = list(RunDir(Path(path)).reports("worker"))
    shutil.rmtree(path, ignore_errors=True)
    return reports


def _gunicorn_idle(frame: FrameType | None) -> bool:
    """Whether `frame` (where a signal interrupted the main thread) is gunicorn's arbiter
    waiting for something to do."""
    while frame is not None:
        if frame.f_globals.get("__name__") == "gunicorn.arbiter":
            return frame.f_code.co_name in IDLE_WAITS
        frame = frame.f_back
    return False
