"""The one watcher of a warm gunicorn server: a process of its own, started by the arbiter.

It watches the union of what the workers reported and what the arbiter imported, with the
same `Watcher` a worker uses on its own, and turns each change into one action:

- a file only the workers import: SIGTERM to every worker that started before the change
  (gunicorn's graceful stop); the arbiter forks fresh, warm ones;
- a non-Python file in a directory a Django app declared (templates, translations): the
  workers are asked to offer it to Django's `file_changed` receivers, without a restart;
- a file only the Django tier holds (settings, models, admin modules, what `ready()`
  imports, a file the settings read): the arbiter is asked for a new tier, and restarts
  the workers;
- a file the arbiter imported (a third-party package upgraded, gunicorn itself): the arbiter
  is asked to re-exec itself, since what it holds is stale.

A separate process rather than a thread in the arbiter: the arbiter forks workers, and a
process that forks must not hold threads (nor the watcher's own threads, in Rust).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Set as AbstractSet
from pathlib import Path

from ..bursts import record_restart
from ..bytecode import discard_bytecode, stale_bytecode
from ..log import describe_paths
from ..refreshlog import RefreshLog, refreshable
from ..watcher import STALE_BYTECODE_NS
from ..watching import Pattern, WatchPlan
from ..watching.plan import change_ns, saved_after
from ..watching.sources import project_directories
from .rundir import Report, RunDir

__all__ = ["SIGNAL", "ReportedSources", "Supervisor"]

logger = logging.getLogger("reloader")

SIGNAL = signal.SIGURG
"""To the arbiter: import what the workers reported, and re-exec if the run directory asks
for it. To a worker: apply the refreshes published in the run directory now. Ignored by
default and unused by gunicorn, so a stray one harms nothing."""


def _patterns(entries: list[tuple[str, str, bool]]) -> set[Pattern]:
    return {Pattern(Path(d), glob, bool(recursive)) for d, glob, recursive in entries}


def _key(report: Report) -> tuple[int, int]:
    return report.pid, report.started_ns


def _saved_since(files: AbstractSet[Path], started_ns: int) -> set[Path]:
    """Of `files` imported by a process that began importing at `started_ns`, those saved
    since (or whose bytecode is older than their source): it holds stale code."""
    if not started_ns:
        return set()
    changes = {f: change_ns(f) for f in files}
    late = saved_after(changes, started_ns)
    recent = started_ns - STALE_BYTECODE_NS
    return late | stale_bytecode(f for f, changed in changes.items() if changed > recent)


class Held:
    """What one warm parent (the arbiter, or the Django tier) reported it holds."""

    def __init__(self, report: Report) -> None:
        self.files = frozenset(Path(f) for f in report.files)
        self.patterns = frozenset(_patterns(report.patterns))
        """The user's extra files given as globs, once Django's settings are held."""
        self.started_ns = report.started_ns
        """When the parent began the imports its latest report added."""

    def holds(self, path: Path) -> bool:
        return path in self.files or any(p.matches(path) for p in self.patterns)

    def saved_since(self, before: Held) -> set[Path]:
        """Files new since `before` and saved while they were imported: as stale as a change
        seen later."""
        return _saved_since(self.files - before.files, self.started_ns)


class ReportedSources:
    """What the reports in the run directory say to watch, plus the reports themselves."""

    def __init__(self, run: RunDir) -> None:
        self.run = run
        self.generation = 0
        self.workers: list[Report] = []
        self.arbiter = Held(Report(pid=0))
        self.tier = Held(Report(pid=0))
        self.refresh_patterns: frozenset[Pattern] = frozenset()
        self.ignore: frozenset[str] = frozenset()
        self.polling = False
        """The workers' own options (see `Report.ignore`)."""
        self._times: dict[str, int] = {}
        self.reread()

    def reread(self) -> None:
        self._times = self.run.report_times()  # first: a report written meanwhile is news
        self.workers = list(self.run.reports("worker"))
        self.arbiter = Held(next(iter(self.run.reports("arbiter")), Report(pid=0)))
        self.tier = Held(next(iter(self.run.reports("tier")), Report(pid=0)))
        self.refresh_patterns = frozenset(
            p for report in self.workers for p in _patterns(report.refresh_patterns)
        )
        self.ignore = frozenset(g for report in self.workers for g in report.ignore)
        self.polling = any(report.polling for report in self.workers)
        self.generation += 1

    def behind(self) -> bool:
        """Whether a report was written since the last `reread()`, its event not seen yet."""
        return self.run.report_times() != self._times

    def modules_changed(self) -> bool:
        return False  # reports arrive as file events

    def read_ns(self, path: Path) -> int:
        return 0  # a worker's start time covers what it read (see `_saved_since`)

    def plan(self) -> WatchPlan:
        files = set(self.arbiter.files | self.tier.files)
        patterns = {Pattern(self.run.path, "*.json")} | self.refresh_patterns
        patterns |= self.arbiter.patterns | self.tier.patterns
        for report in self.workers:
            files.update(Path(f) for f in report.files)
            patterns |= _patterns(report.patterns)
        return WatchPlan(frozenset(files), frozenset(patterns))

    def project_directories(self) -> frozenset[Path]:
        """The directories of the project's modules the workers reported."""
        return project_directories(f for report in self.workers for f in report.files)

    def is_report(self, path: Path) -> bool:
        return path.parent == self.run.path and path.suffix == ".json"


class Supervisor:
    def __init__(self, run: RunDir, arbiter_pid: int) -> None:
        self.run = run
        self.arbiter_pid = arbiter_pid
        self.sources = ReportedSources(run)
        self.stopping: set[tuple[int, int]] = set()
        """Workers (pid, started_ns) already told to stop: a burst of changes stops each
        once. With the start time, a new worker that gets a stopped one's pid is not taken
        for it."""
        self.offered: set[str] = set()
        """Modules the arbiter was asked to import ahead of the next fork."""
        self.tier_asked_ns = 0
        """The change a new tier was last asked for: the next one has it."""

    def changed(self, paths: set[Path]) -> bool:
        """The watcher's callback. It never ends watching: after asking for a re-exec this
        process watches on until the arbiter stops it, since the arbiter may find the new
        image broken and serve on."""
        reports = {p for p in paths if self.sources.is_report(p)}
        paths -= reports | {p for p in paths if p.parent == self.run.path}
        # A worker serves right after its report; a save after that must stop it too, even
        # when this batch is handled before the report's own event.
        if reports or (paths and self.sources.behind()):
            known = {r.pid for r in self.sources.workers}
            arbiter, tier = self.sources.arbiter, self.sources.tier
            self.sources.reread()
            self.stopping &= {_key(r) for r in self.sources.workers}  # exited: forget them
            paths |= self.sources.arbiter.saved_since(arbiter)
            paths |= self.sources.tier.saved_since(tier)
            # Saved while the plan was being rebuilt: no event came for it, and a worker
            # that reported before holds it as stale as the late starter does.
            paths |= self._stop_late_starters(known)
            self._offer_modules(known)
        if not paths:
            return False
        if any(self.sources.arbiter.holds(p) for p in paths):
            logger.info("re-executing the arbiter: changed %s", describe_paths(paths))
            discard_bytecode(paths)
            self.run.request_reexec()
            self._signal([self.arbiter_pid], SIGNAL)
            return False
        held = {p for p in paths if self.sources.tier.holds(p)}
        if held:
            # Seen again when the plan changes (see `Watcher._catch_up`): a tier that began
            # its imports after the change has it.
            changed_ns = max(change_ns(p) or time.time_ns() for p in held)
            if changed_ns > max(self.sources.tier.started_ns, self.tier_asked_ns):
                self.tier_asked_ns = changed_ns
                # The arbiter stops every worker: all were forked from the stale tier.
                logger.info("replacing the Django tier: changed %s", describe_paths(paths))
                discard_bytecode(paths)
                self.run.request_rebuild(changed_ns)
                self._signal([self.arbiter_pid], SIGNAL)
                return False
            paths -= held
        refresh = refreshable(paths, self._declared)
        if refresh:
            self._publish(refresh)
            self._signal([r.pid for r in self.sources.workers], SIGNAL)
        restart = paths - refresh
        if restart:
            # An event means 'changed', whatever date the file bears (see `change_ns`); the
            # time only spares a worker forked after the last change: it has the new code.
            now = time.time_ns()
            changed_ns = max(change_ns(p) or now for p in restart)
            stale = [
                r
                for r in self.sources.workers
                if r.started_ns < changed_ns and _key(r) not in self.stopping
            ]
            if stale:
                discard_bytecode(restart)
                record_restart(self.run.path, restart, self.sources.project_directories())
                logger.info(
                    "restarting workers %s: changed %s",
                    ", ".join(str(r.pid) for r in stale),
                    describe_paths(restart),
                )
                self._signal([r.pid for r in stale], signal.SIGTERM)
                self.stopping.update(_key(r) for r in stale)
        return False

    def _stop_late_starters(self, known: set[int]) -> set[Path]:
        """A worker that reports for the first time may have imported a file saved while it
        was starting, before its report let us watch for it: stop it too. The files so found,
        for the workers that started before their save."""
        found: set[Path] = set()
        for report in self.sources.workers:
            if report.pid in known or _key(report) in self.stopping:
                continue
            late = _saved_since({Path(f) for f in report.files}, report.started_ns)
            if late:
                discard_bytecode(late)
                record_restart(self.run.path, late, self.sources.project_directories())
                logger.info(
                    "restarting worker %d: changed while it started: %s",
                    report.pid,
                    describe_paths(late),
                )
                self._signal([report.pid], signal.SIGTERM)
                self.stopping.add(_key(report))
                found |= late
        return found

    def _offer_modules(self, known: set[int]) -> None:
        """Have the arbiter import what the workers reported now, while it idles, rather than
        just before the next fork: so even the first restart after a start is warm. Without
        a Django tier, new workers may be what it waits for to set one up."""
        modules = {name for report in self.sources.workers for name in report.modules}
        new_workers = any(r.pid not in known for r in self.sources.workers)
        if modules - self.offered or (new_workers and not self.sources.tier.files):
            self.offered |= modules
            self._signal([self.arbiter_pid], SIGNAL)

    def _declared(self, path: Path) -> bool:
        return any(p.matches(path) for p in self.sources.refresh_patterns)

    def _signal(self, pids: list[int], signum: int) -> None:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def _publish(self, paths: set[Path]) -> None:
        """Before the signal: a worker that answers a request before it handles the signal
        applies them then (see `refreshlog`)."""
        try:
            log = RefreshLog(self.run.path)
        except (OSError, ValueError) as exc:
            logger.error("cannot publish the refresh of %s: %s", describe_paths(paths), exc)
            return
        try:
            log.publish(sorted(paths))
        finally:
            log.close()
