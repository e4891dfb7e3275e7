"""The arbiter's side of a warm server: start the supervisor (again, if it dies), warm up
(before each fork, and when the supervisor asks), keep the Django tier (see `tier.py`) and
replace it on request, re-exec on request. Everything here runs in
the arbiter's main thread, in gunicorn's hooks or in its main loop: the supervisor's signal is
queued like gunicorn's own signals and handled where gunicorn handles those, never where it
happened to interrupt the arbiter (between a fork and gunicorn recording the new worker, or
while it shuts down)."""

from __future__ import annotations

import contextlib
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
from ..settings import (
    CARRY_VARIABLE,
    SETUP_FAILED_VARIABLE,
    SPOILT_VARIABLE,
    WARM_DJANGO,
    read_options,
)
from ..watching.plan import change_ns
from .django_setup import DjangoSetup, SetupProblem
from .forks import become_subreaper, fork_frozen
from .held import held_report
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
from .spare import Spare
from .supervisor import SIGNAL
from .tier import DjangoTier, TierGone, unfit
from .tier_process import TierPlan

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

MAX_TIER_LOSSES = 3
"""Tier processes that may die or hang in a row before setup is left to the workers."""

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
        self.raw_env = _raw_env(server)
        """gunicorn's `--env`, in `environ` already: a reload (HUP) may change it."""
        self.startup = StartUp()
        worker_class = str(getattr(server.cfg, "worker_class_str", ""))
        self.warm = not any(name in worker_class for name in COLD_WORKERS)
        # Before anything is created: a bad value stops the server here.
        self.django = DjangoSetup(self.warm and WARM_DJANGO.read(None, os.environ))
        failed = os.environ.pop(SETUP_FAILED_ENV, "")
        self.setup_failed_ns, _, self.setup_failure = failed.partition(" ")
        self.run = RunDir.create()
        self._give_run_dir_to_workers()
        self.preloader = Preloader(self.run.path)
        if os.environ.get(SPOILT_VARIABLE):
            self.preloader.spoilt = os.environ[SPOILT_VARIABLE]
        self.supervisor: subprocess.Popen[bytes] | None = None
        self.supervisor_started_ns = 0
        self._warming = False
        self.exited = _carried_reports()
        """Reports of workers gone since the last warm-up: when every worker restarts at once,
        the arbiter forks the first new one after the last old one exited."""
        self.carried = bool(self.exited)
        self.orphans = carried_orphans()
        self.finishing: dict[int, Any] = {}
        """Workers stopped for a restart, finishing requests in flight while their
        replacements serve: out of gunicorn's count (see `let_finish`)."""
        self.extra_files: set[str] = set()
        """The extra files the workers watch (their options: the environment's or wrap()'s),
        as of the reports Django was set up from."""
        self.unfit = unfit(server) if self.warm and self.django.enabled else None
        self.tiered = self.warm and self.django.enabled and self.unfit is None
        """Django is set up in a tier of its own rather than here (see `tier.py`)."""
        self.tier: DjangoTier | None = None
        self.spare = Spare()
        self.modules: dict[str, None] = {}
        """Every third-party module the workers reported, in order: what a new tier imports."""
        self.tier_failed_ns = 0
        """When a tier's setup last raised: the next is due once workers started since load."""
        self.tier_losses = 0

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
        kill_workers: Callable[[int], None] = self.server.kill_workers
        self.server.kill_workers = lambda signum: self._kill_workers(kill_workers, signum)
        # Called at every turn of gunicorn's main loop (at least once a second).
        murder_workers: Callable[[], None] = self.server.murder_workers
        self.server.murder_workers = lambda: self._each_turn(murder_workers)
        # What the arbiter imported is in every worker; what tells processes apart must not be.
        os.register_at_fork(after_in_child=renew_process_identities)
        if self.tiered:
            become_subreaper()  # the tier's workers are ours (see forks.py)
            os.register_at_fork(after_in_child=self._close_tier_channel)
        mode = "workers are forked warm" if self.warm else "nothing is preloaded for it"
        assert self.supervisor is not None
        logger.info("one watcher for the server (pid %d); %s", self.supervisor.pid, mode)
        if self.unfit is not None:
            logger.info(
                "Django is set up in the arbiter itself, not in a tier of its own (%s): an "
                "edit of what it holds (settings, models) re-executes the arbiter",
                self.unfit,
            )

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

    def before_fork(self, worker: Any) -> None:
        """gunicorn's pre_fork: the first safe point after the new image's signal handlers
        are in place, and the moment to make sure what the next worker needs is there."""
        os.fork = _real_fork  # (a fork handed to the tier that never happened)
        self.orphans = reap_orphans(self.orphans)
        self._check_run_dir()
        self._check_tier()
        self.warm_up()
        tier = self.tier
        if tier is not None and tier.cfg is not self.server.cfg:
            # gunicorn re-read its configuration (HUP): a tier forked before has the old one.
            # gunicorn replaces the workers itself.
            self._replace_tier("gunicorn reloaded its configuration", stop_workers=False)
            tier = self.tier
        if tier is not None:
            os.fork = lambda: self._fork_from_tier(tier, worker)
        else:
            os.fork = _fork_here

    def _fork_from_tier(self, tier: DjangoTier, worker: Any) -> int:
        """gunicorn's `os.fork()` in spawn_worker, once: the tier forks the worker, which
        becomes our child. If the tier cannot, the worker is forked here, and sets Django up
        itself."""
        os.fork = _real_fork
        try:
            pid = tier.spawn(worker)
        except TierGone as exc:
            if tier.problem is not None:
                self._tier_failed(tier.problem)
            else:
                self._tier_lost(str(exc))
            return fork_frozen()
        self.tier_losses = 0
        return pid

    def _on_child_exit(self, reap: Callable[[], None]) -> None:
        self._check_tier()
        if self.preloader.busy:
            # The probe's end, perhaps: handled as the supervisor's signal is, the run
            # directory checked first, and nothing that fails let out into gunicorn's loop.
            self._on_request()
        # Right before gunicorn's waitpid(-1), which would take the supervisor's exit status
        # (the imports above take a while: the supervisor may have died meanwhile).
        self._check_supervisor()
        reap()
        self.orphans = reap_orphans(self.orphans)
        self._reap_finishing()

    def let_finish(self, pids: list[int]) -> None:
        """Workers stopping with requests in flight asked for their replacements now. gunicorn
        forks a worker when it has fewer than it should: out of its count, each is forked at
        once, instead of when the old one is gone. (Asked while gunicorn itself stops, or
        re-execs, the request is never read.) Only for a server of one worker: with more, the
        others' replacements serve meanwhile, and forking them all at once makes them share
        the CPU."""
        if self.server.num_workers != 1:
            return
        for pid in pids:
            worker = self.server.WORKERS.pop(pid, None)
            if worker is not None:
                self.finishing[pid] = worker
                logger.info(
                    "forking the replacement of worker %d now; it finishes its requests", pid
                )

    def _reap_finishing(self) -> None:
        """As gunicorn does for its workers: the heartbeat file closed, `child_exit` run."""
        for pid, worker in list(self.finishing.items()):
            try:
                if os.waitpid(pid, os.WNOHANG) == (0, 0):
                    continue
            except ChildProcessError:
                pass  # gunicorn's waitpid(-1) took it
            del self.finishing[pid]
            worker.tmp.close()
            self.server.cfg.child_exit(self.server, worker)

    def _kill_workers(self, kill_workers: Callable[[int], None], signum: int) -> None:
        """gunicorn's, for the finishing workers too; not its SIGKILL after a graceful stop,
        which comes once its own workers are gone: they have until `_end_finishing`."""
        kill_workers(signum)
        if signum == signal.SIGKILL:
            return
        for pid in self.finishing:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def _end_finishing(self) -> None:
        """At the server's stop: wait for the finishing workers up to gunicorn's graceful
        timeout, as it waits for its own, then kill them."""
        deadline = time.monotonic() + float(self.server.cfg.graceful_timeout)
        while self.finishing and time.monotonic() < deadline:
            time.sleep(0.05)
            self._reap_finishing()
        for pid in self.finishing:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        while self.finishing:
            self._reap_finishing()
            time.sleep(0.01)

    def _close_tier_channel(self) -> None:
        """In any child forked here: the tier's channel is the arbiter's alone."""
        if self.tier is not None:
            self.tier.channel.close()
        self.spare.close_channel()

    def _each_turn(self, murder_workers: Callable[[], None]) -> None:
        murder_workers()
        if not self.tiered:
            return
        try:
            self.spare.keep(self.server, self.tier, self._spare_plan)
        except Exception:
            logger.exception("keeping a spare Django tier failed")

    def _spare_plan(self) -> TierPlan | None:
        reports = list(self.run.reports("worker"))
        report = self.django.due(reports)
        return None if report is None else self._plan(report, reports)

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
            "the workers, so that they report what to watch, and the watcher process, whose "
            "watch of the directory went with it",
            self.run.path,
        )
        self._give_run_dir_to_workers()
        self._report(time.time_ns())
        # The old one would see the new reports only once it looked for the directory again,
        # seconds later, and meanwhile restart no worker that reported since.
        self._stop_supervisor()
        self._start_supervisor()
        if self.tier is not None:
            self._replace_tier("its run directory was made again")  # it reports there
        else:
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
        if self.tiered:
            self._warm_up_tiered()
        else:
            self._warm_up_in_place()

    def _warm_up_tiered(self) -> None:
        """Import here what imports without Django's settings, as found by a probe in the
        background (this process serves on meanwhile: see `_on_child_exit`); leave the rest
        to the tier, and start one once the workers loaded the project: one forked before the
        probe ended imports more itself, as fast as its workers need, and the next one is
        forked from here with the probe's findings."""
        reports = [*self.run.reports("worker"), *self.exited]
        self.exited = []
        names = dict.fromkeys(n for r in reports for n in r.modules)
        self.modules.update(names)
        self.preloader.start(names)
        started_ns = time.time_ns()
        imported = self.preloader.take()
        if imported:
            logger.info(
                "the arbiter imported %d modules the workers use that import cleanly before "
                "Django's settings (%d left to the Django tier), in %.2f s",
                imported,
                len(self.preloader.refused),
                (time.time_ns() - started_ns) / 1e9,
            )
            self._report(started_ns)
        if self._spoilt():
            return
        if self.tier is not None:
            other = _other_settings(reports, self.tier.settings_module)
            if other is not None:
                self._replace_tier(f"a worker runs Django with {other}")
            else:
                self.tier.warm(list(names))
            return
        report = self.django.due(reports)
        if report is not None and all(r.started_ns > self.tier_failed_ns for r in reports):
            self._start_tier(report, reports)

    def _plan(self, report: Report, reports: list[Report]) -> TierPlan:
        return TierPlan(
            report=report,
            modules=list(self.modules),
            environ={
                **{k: v for k, v in self.environ.items() if k not in self.raw_env},
                **_raw_env(self.server),
                ENV: str(self.run.path),
            },
            extra_files=sorted({e for r in reports for e in r.extra_files}),
            run=self.run,
        )

    def _start_tier(self, report: Report, reports: list[Report], spare: bool = False) -> None:
        """A new tier for the workers' `reports`: with `spare`, the spare goes on if it may
        (see `spare.py`), else a new fork of this process sets Django up."""
        plan = self._plan(report, reports)
        self.extra_files = set(plan.extra_files)
        tier = self.spare.take(self.server, plan) if spare else None
        self.tier = tier or DjangoTier.start(self.server, plan)

    def _replace_tier(self, why: str, stop_workers: bool = True, spare: bool = False) -> None:
        """A new tier, from the spare or from this process, which holds Django imported but
        not set up: what the old tier held is stale, and so is every worker forked from it."""
        old = self.tier
        logger.info("replacing the Django tier%s: %s", f" (process {old.pid})" if old else "", why)
        # Its report stays until the new tier's replaces it: a file that leaves the watch plan
        # and comes back counts as changed since the supervisor started.
        self._drop_tier(keep_report=True, keep_spare=spare)
        if stop_workers:
            self.server.kill_workers(signal.SIGTERM)
        reports = [*self.run.reports("worker"), *self.exited]
        report = self.django.due(reports)
        if report is not None:
            self._start_tier(report, reports, spare)
        self.spare.drop()  # not due: made for a setup the workers no longer report

    def _drop_tier(self, keep_report: bool = False, keep_spare: bool = False) -> None:
        if not keep_spare:
            self.spare.drop()
        tier, self.tier = self.tier, None
        if tier is not None:
            tier.stop()
            if not keep_report:
                self.run.remove_tier()

    def _check_tier(self) -> None:
        """Learn how the tier's setup went, or that it died, without waiting."""
        tier = self.tier
        if tier is None:
            return
        if tier.settled(0) and tier.problem is not None:
            self._tier_failed(tier.problem)
        elif tier.exited():
            self._tier_lost(f"process {tier.pid} ended")

    def _tier_failed(self, problem: SetupProblem) -> None:
        self._drop_tier()
        reports = list(self.run.reports("worker"))
        if not problem.raised:
            self._leave_setup_to_workers(problem.what, reexec=False)
        elif reports and not _changed_since(reports, min(r.started_ns for r in reports)):
            # The workers loaded these very files cleanly: the failure is the tier's alone.
            self._leave_setup_to_workers(f"raises {problem.what}", reexec=False)
        else:
            # Perhaps a module broken by the save that brought us here: the workers, forked
            # from this process meanwhile, show it; a tier is due once they load again.
            self.tier_failed_ns = time.time_ns()
            logger.warning(
                "django.setup() failed in the Django tier (%s): workers are forked from the "
                "arbiter, and set Django up themselves, until they load cleanly",
                problem.what,
            )

    def _tier_lost(self, why: str) -> None:
        self._drop_tier()
        self.tier_losses += 1
        logger.error(
            "the Django tier failed (%s): workers are forked from the arbiter until a new "
            "one is set up",
            why,
        )
        if self.tier_losses >= MAX_TIER_LOSSES:
            self._leave_setup_to_workers(f"failed {self.tier_losses} times", reexec=False)

    def _warm_up_in_place(self) -> None:
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
        if self._spoilt():
            return
        if grown:
            self._report(started_ns)

    def _spoilt(self) -> bool:
        """Whether an import went otherwise here than in its probe (see `preload.py`), half
        done now: every fork would hand it down, so this image is replaced by one that
        preloads nothing, for the server's life."""
        spoilt = self.preloader.spoilt
        if spoilt is None or SPOILT_VARIABLE in self.environ:
            return False
        logger.error("preloading spoilt the arbiter (%s): re-executing it", spoilt)
        self.environ[SPOILT_VARIABLE] = spoilt
        self.reexec("a preloaded import failed", carry=False)
        return True

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
            "django.setup() in the %s %s: leaving it to the workers for this server's "
            "life (as RELOADER_WARM_DJANGO=0 does)%s",
            "Django tier" if self.tiered else "arbiter",
            why,
            ""
            if not why.startswith("raise")
            else ". The workers load: something their WSGI "
            "file does before get_wsgi_application() is missing in the arbiter",
        )
        self.environ[WARM_DJANGO.env] = "0"
        self.django.enabled = False
        self.tiered = False
        if reexec:
            self.reexec("Django's setup is left to the workers", carry=False)

    def _report(self, started_ns: int) -> None:
        """Tell the supervisor the files held here (see `held_report`)."""
        config = getattr(self.server.cfg, "config", None)
        if self.django.settings_module is None:
            report = held_report(started_ns, config)
        else:
            report = held_report(started_ns, config, self.django.opened, self.extra_files)
        self.run.write_report("arbiter", report)

    def worker_exited(self, pid: int) -> None:
        report = self.run.worker_report(pid)
        if report is not None and self.warm:  # only a warm-up reads (and clears) them
            self.exited.append(report)
        self.run.remove_worker(pid)

    def stop(self) -> None:
        """At the server's exit."""
        self._end_finishing()
        self._release()

    def _release(self) -> None:
        self.preloader.stop()
        self._drop_tier()
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
            self.let_finish(self.run.take_replacement_requests())
            if self.run.take_reexec_request():
                self.reexec("code it imported changed")
            self._check_tier()
            changed_ns = self.run.take_rebuild_request()
            if changed_ns is not None and (self.tier is None or self.tier.started_ns < changed_ns):
                self._replace_tier("code it holds changed", spare=True)
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
        self._drop_tier()
        self.preloader.stop()
        self._stop_supervisor()  # waited for: it would be the new image's zombie
        if carry:
            environ[CARRY_ENV] = str(self.run.path)
        else:
            self._release()  # the finishing workers go with the orphans
        stop_control = getattr(arbiter, "_stop_control_server", None)
        if callable(stop_control):
            stop_control()
        exec_new_image(arbiter, environ, [*arbiter.WORKERS, *self.orphans, *self.finishing])


_real_fork = os.fork


def _fork_here() -> int:
    """gunicorn's `os.fork()` in spawn_worker, once, when no tier forks the worker."""
    os.fork = _real_fork
    return fork_frozen()


def _raw_env(server: Any) -> dict[str, str]:
    env = getattr(server.cfg, "env", None)
    return dict(env) if isinstance(env, dict) else {}


def _other_settings(reports: list[Report], settings_module: str) -> str | None:
    """A settings module some worker runs that is not the tier's (its WSGI file chose
    another): the tier must be replaced."""
    return min({r.django_settings for r in reports} - {"", settings_module}, default=None)


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
