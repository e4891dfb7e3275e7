"""The background thread of one process: keeps a monitor on what `Sources` says to watch and
passes each relevant change to a callback.

It knows no server and no framework: the callback decides what a change means (a restart, or
nothing because Django handled it) and returns True when watching should end.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Protocol

from .bytecode import stale_bytecode
from .monitors import STEP_MS, Monitor, PollingMonitor, choose_monitor
from .threads import StopFlag, start_thread
from .watching import ChangeFilter, WatchPlan
from .watching.plan import MTIME_SLACK_NS, change_ns

__all__ = ["MTIME_SLACK_NS", "RESCAN_TICKS", "PlanSource", "Watcher"]

logger = logging.getLogger("reloader")

RESCAN_TICKS = 8
"""Quiet ticks (2 s) between two looks for directories that did not exist yet."""
STALE_BYTECODE_NS = 60_000_000_000
"""Sources saved this long before the process started are checked for stale bytecode when
first seen: the saves that leave it (two within one second) come in bursts, and the process
that sees one deletes the bytecode of what it saw."""
RETRY_SECONDS = 5.0
"""Wait before trying again when no monitor can watch at all."""

OnChanges = Callable[[set[Path]], bool]


class PlanSource(Protocol):
    """Where the watcher gets its plan: `watching.Sources` in a serving process."""

    generation: int
    """Changes whenever the plan may have changed in a way `modules_changed()` cannot tell."""

    def plan(self) -> WatchPlan: ...

    def modules_changed(self) -> bool: ...

    def read_ns(self, path: Path) -> int:
        """When this process read `path` (its module was imported); 0 if not known."""
        ...


class Watcher:
    """Watches for one process from `start()` until `stop()` or until the callback says so."""

    def __init__(
        self,
        sources: PlanSource,
        accept: ChangeFilter,
        force_polling: bool,
        on_changes: OnChanges,
        step_ms: int = STEP_MS,
        keep_going: bool = False,
    ) -> None:
        self.sources = sources
        self.accept = accept
        self.force_polling = force_polling
        self.on_changes = on_changes
        self.step_ms = step_ms
        self.keep_going = keep_going
        """Watch again after an unexpected error, instead of ending: for a process that does
        nothing else (the warm supervisor), an ended watcher is a server gone deaf."""
        self.stop_flag = StopFlag()
        self._start_ns = 0
        self._since_ns = 0
        self._seen: set[Path] = set()

    def start(self, since_ns: int | None = None) -> None:
        """Start watching. Files that turn up later in the plan and were modified after this
        call (or after `since_ns`, when a watcher before this one covered until then) count
        as changed, so an edit made while the app is importing is not lost."""
        start_ns = time.time_ns() if since_ns is None else since_ns
        self._start_ns = self._since_ns = start_ns - MTIME_SLACK_NS
        start_thread(self._run)

    def stop(self) -> None:
        self.stop_flag.set()

    def _run(self) -> None:
        while True:
            try:
                self._loop()
                return
            except Exception:
                if not self.keep_going:
                    logger.exception("the watcher failed; this process no longer reloads")
                    return
                # The next plan's catch-up finds what was saved meanwhile, by its time.
                logger.exception("the watcher failed; watching again in %ss", RETRY_SECONDS)
                if self.stop_flag.wait(RETRY_SECONDS):
                    return

    def _loop(self) -> None:
        # Polling everything: asked for (also when asked since: the warm supervisor), or
        # native watching failed. A directory on a network file system only makes the next
        # plans poll the directories that are on one.
        poll_all = False
        warned = False
        while not self.stop_flag.is_set():
            poll_all = poll_all or self.force_polling
            # Read before planning: sources added while we plan must still wake the monitor.
            generation = self.sources.generation
            plan = self.sources.plan()
            directories = plan.directories()
            monitor, reason = choose_monitor(poll_all, directories, self.step_ms)
            if reason and not warned:
                warned = True
                logger.warning("watching by polling: %s", reason)
            try:
                if self._watch(monitor, directories, plan, generation):
                    return
            except FileNotFoundError:
                continue  # a directory vanished since we planned: plan again
            except OSError as exc:
                if isinstance(monitor, PollingMonitor):
                    logger.error("cannot watch files (%s); retrying in %ss", exc, RETRY_SECONDS)
                    self.stop_flag.wait(RETRY_SECONDS)
                else:
                    poll_all = warned = True
                    logger.warning("native file watching failed (%s); polling instead", exc)

    def _watch(
        self, monitor: Monitor, directories: Collection[Path], plan: WatchPlan, generation: int
    ) -> bool:
        """Run `monitor` until watching ends (True) or the directories must change (False)."""
        wake = _Wake(self.stop_flag, self.sources, generation)
        missing = plan.missing_directories()
        ticks = 0
        caught_up = False
        for batch in monitor.watch(directories, wake):
            # The first yield comes once the watches are in place: what changed before, while
            # no monitor ran or the app was importing, is found by its modification time.
            if not caught_up and self._catch_up(plan):
                return True
            caught_up = True
            if batch and self._dispatch({p for p in batch if self.accept(p) and plan.matches(p)}):
                return True
            ticks = 0 if batch else ticks + 1
            if ticks >= RESCAN_TICKS:
                ticks = 0
                if any(d.is_dir() for d in missing):
                    return False
            if self.sources.modules_changed():
                plan = self.sources.plan()
                if plan.directories() != directories:
                    return False
                # Modules imported meanwhile may have been edited before we knew them.
                if self._catch_up(plan):
                    return True
        # Woken: stopped, or someone added sources and the outer loop re-plans at once.
        return self.stop_flag.is_set()

    def _catch_up(self, plan: WatchPlan) -> bool:
        """Dispatch the plan's files modified while nothing watched them; True if watching
        ended. A file the last look covered counts from that look on; any other file counts
        from the start, since no monitor may have covered it until now, or from when its
        module was imported, if that was later: a save before the import was read by it."""
        now_ns = time.time_ns()
        touched = set()
        recent = set()
        looked_at = set()
        for path in plan.existing_files():
            new = path not in self._seen
            changed = change_ns(path)  # an older copy put in place counts too
            since = max(self._start_ns, self.sources.read_ns(path)) if new else self._since_ns
            if since < changed <= now_ns and self.accept(path):
                touched.add(path)
            looked_at.add(path)
            if new and changed > self._start_ns - STALE_BYTECODE_NS:
                recent.add(path)
        # Only what this plan held was covered: a file that leaves the plan (the supervisor
        # drops an exited worker's files) and comes back counts from the start again.
        self._seen = looked_at
        # Just imported, perhaps from bytecode compiled before their last save.
        touched |= {p for p in stale_bytecode(recent) if self.accept(p)}
        self._since_ns = now_ns - MTIME_SLACK_NS
        return self._dispatch(touched)

    def _dispatch(self, changes: set[Path]) -> bool:
        if not changes or self.stop_flag.is_set():
            return False
        if self.on_changes(changes):
            self.stop_flag.set()
            return True
        return False


class _Wake:
    """The monitor's stop signal: set when watching stops or the sources grew."""

    def __init__(self, stop: StopFlag, sources: PlanSource, generation: int) -> None:
        self.stop = stop
        self.sources = sources
        self.generation = generation

    def is_set(self) -> bool:
        return self.stop.is_set() or self.sources.generation != self.generation
