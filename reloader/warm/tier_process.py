"""Inside the Django tier: a process forked from the arbiter that runs `django.setup()`,
imports what the workers need once the apps are ready, and forks the workers gunicorn asks
the arbiter for (see `tier.py` for the arbiter's side).

A worker is made by gunicorn's own `Arbiter.spawn_worker`, run here on this process's copy
of the arbiter: gunicorn's code runs in the worker as in any other. Two things differ, both
set up around that call: `os.fork` is the adopted fork of `forks.py` (the worker is the
arbiter's child), and the `pre_fork` hook puts the arbiter's heartbeat file in place of the
one the worker object made here, so the arbiter's timeout checks see this worker beat.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, replace
from typing import Any, NoReturn

from ..restarters.teardown import exit_without_teardown
from .django_setup import DjangoSetup
from .forks import (
    ARBITER_SIGNALS,
    QUIT,
    Channel,
    fork_adopted,
    leave_signals_to_the_arbiter,
    process_name,
    set_process_name,
)
from .held import held_report
from .opened import recorded_so_far
from .parking import Gate
from .preload import Preloader
from .rundir import Report, RunDir
from .supervisor import SIGNAL

__all__ = ["NAME", "SPARE_NAME", "TierPlan", "serve_tier"]

logger = logging.getLogger("reloader")

NAME = b"reloader-tier"
"""The tier's process name (`ps -o comm`); its command line is the arbiter's."""
SPARE_NAME = b"reloader-spare"
"""Its name while it is a spare, parked."""


@dataclass(frozen=True)
class TierPlan:
    """What the arbiter gives a new tier."""

    report: Report
    """The worker report to set Django up from (its settings, sys.path, environment)."""
    modules: list[str]
    """Third-party modules the workers imported, to import once the apps are ready."""
    environ: dict[str, str]
    """The environment the user started the server with, plus the run directory's."""
    extra_files: list[str]
    """The workers' extra files: held here once the settings are (they may have read them)."""
    run: RunDir
    spare: bool = False
    """Park before the project's first import, until the arbiter says go (see `parking.py`)."""


def serve_tier(server: Any, channel: Channel, plan: TierPlan) -> NoReturn:
    """The tier's life, in the child the arbiter just forked; it ends with the process."""
    code = 0
    try:
        _Tier(server, channel, plan).serve()
    except BaseException:
        logger.exception("the Django tier process %d failed", os.getpid())
        code = 1
    os._exit(code)


class _Tier:
    def __init__(self, server: Any, channel: Channel, plan: TierPlan) -> None:
        self.server = server
        self.channel = channel
        self.plan = plan
        self.pid = os.getpid()
        self.preloader = Preloader(plan.run.path)
        self.django = DjangoSetup(True)
        self.handlers = {s: signal.getsignal(s) for s in (*QUIT, *ARBITER_SIGNALS, signal.SIGCHLD)}
        self.name = process_name()
        self.heartbeat_fd = -1

    def serve(self) -> None:
        self._settle_in()
        started_ns = time.time_ns()
        gate = Gate(self.channel, lambda: self._held(started_ns).files) if self.plan.spare else None
        if gate is not None:
            sys.meta_path.insert(0, gate)
        try:
            problem = self.django.run(self.plan.report)
        finally:
            if gate is not None:
                sys.meta_path.remove(gate)
        if gate is not None and problem is None:
            gate.park()  # a setup that imported no project module after the app configs
        if problem is not None:
            self._tell({"problem": problem.what, "raised": problem.raised})
            return
        if gate is not None:
            set_process_name(NAME)
            started_ns = int(gate.go["started_ns"])
            self.plan = replace(self.plan, modules=list(map(str, gate.go["modules"])))
        self.preloader.preload(self.plan.modules)
        if self.preloader.spoilt is not None:
            self._tell({"problem": f"preloading: {self.preloader.spoilt}", "raised": False})
            return
        self._report(started_ns)
        seconds = (time.time_ns() - started_ns) / 1e9
        logger.info(
            "Django set up in the tier process %d (%s, %.2f s%s): workers are forked from it",
            self.pid,
            self.django.settings_module,
            seconds,
            ", the rest of a spare's" if gate is not None else "",
        )
        self._tell({"ready": seconds})
        while True:
            try:
                message, fds = self.channel.receive()
            except EOFError:
                return  # the arbiter is done with us
            if not isinstance(message, dict):
                continue
            if "spawn" in message:
                self._spawn(int(message["spawn"]), fds[0])
            elif "warm" in message and self.preloader.preload(map(str, message["warm"])):
                self._report(started_ns)  # as begun at setup: see ReportedSources.tier
            if self.preloader.spoilt is not None:
                logger.error("preloading spoilt the Django tier: %s", self.preloader.spoilt)
                return  # the arbiter finds it gone, and makes a new one

    def _tell(self, status: dict[str, object]) -> None:
        """The outcome of setup, which the arbiter reads in its main loop when signalled."""
        self.channel.send(status)
        os.kill(self.server.pid, SIGNAL)

    def _settle_in(self) -> None:
        leave_signals_to_the_arbiter(signal.SIG_DFL)  # middle processes: waited for
        set_process_name(SPARE_NAME if self.plan.spare else NAME)
        # The arbiter's heartbeat files of its workers: not ours to hand down.
        for worker in self.server.WORKERS.values():
            worker.tmp.close()
        self.server.WORKERS.clear()
        os.environ.clear()
        os.environ.update(self.plan.environ)
        self.server.cfg.set("pre_fork", self._pre_fork)

    def _report(self, started_ns: int) -> None:
        self.plan.run.write_report("tier", self._held(started_ns))

    def _held(self, started_ns: int) -> Report:
        opened = self.django.opened or recorded_so_far()
        return held_report(started_ns, self.server.cfg.config, opened, self.plan.extra_files)

    def _spawn(self, age: int, heartbeat_fd: int) -> None:
        """Fork a worker for the arbiter, which made worker number `age` and its heartbeat
        file, whose descriptor came with the request."""
        self.heartbeat_fd = heartbeat_fd
        self.server.worker_age = age - 1  # spawn_worker counts it up
        real_fork = os.fork
        os.fork = self._fork
        try:
            pid = self.server.spawn_worker()
        except BaseException as exc:
            if os.getpid() != self.pid:
                _end_worker(exc)  # gunicorn's worker code ends with sys.exit()
            self.channel.send({"error": f"{type(exc).__name__}: {exc}"})
            return
        finally:
            os.fork = real_fork
            if self.heartbeat_fd >= 0:
                os.close(self.heartbeat_fd)
                self.heartbeat_fd = -1
        worker = self.server.WORKERS.pop(pid, None)
        if worker is not None:
            worker.tmp.close()  # the arbiter's copy stays open there
        self.channel.send({"pid": pid})

    def _pre_fork(self, server: Any, worker: Any) -> None:
        """gunicorn's pre_fork here: the arbiter ran the user's hook already."""
        os.dup2(self.heartbeat_fd, worker.tmp.fileno(), inheritable=False)
        os.close(self.heartbeat_fd)
        self.heartbeat_fd = -1

    def _fork(self) -> int:
        os.fork = _real_fork
        pid = fork_adopted(self.server.pid)
        if pid == 0:
            self.channel.close()
            for signum, handler in self.handlers.items():
                signal.signal(signum, handler)
            set_process_name(self.name)
        return pid


_real_fork = os.fork


def _end_worker(exc: BaseException) -> NoReturn:
    """A worker forked here ends where gunicorn's code lets its exit through: never in the
    tier's own frames (nor the arbiter's frames beneath them). As the interpreter would at
    its end, it first waits for the application's own threads (a mail being sent; the
    arbiter kills it after the grace), then runs the atexit callbacks."""
    code = exc.code if isinstance(exc, SystemExit) else 1
    if not isinstance(code, int):
        if code is not None:
            print(code, file=sys.stderr)
        code = 0 if code is None else 1
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    exit_without_teardown(code)
