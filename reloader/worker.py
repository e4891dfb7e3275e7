"""One serving process: load the application, watch what it depends on, restart on change.

A `Worker` is booted once in each process that serves requests (a gunicorn worker, a mod_wsgi
daemon process). It never imports the application twice: every recovery, from a fixed bug or
a changed module alike, is a fresh process, which is also the only way Django can retry
`apps.populate()`.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import os
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from .bursts import BurstWatch, Restart, last_restart, record_restart
from .bytecode import discard_bytecode
from .importclock import ImportClock
from .integrations.django import DjangoBridge, django_ready, load_urlconf
from .integrations.stream_flags import wake_streams
from .libraries import share_library_lookups
from .log import (
    describe_paths,
    log_failure,
    make_stdout_line_buffered,
    make_visible,
    reclaim_logger,
)
from .peers import WAIT_S, FollowRestarts, Peers
from .refreshlog import RefreshLog, refreshable
from .rendezvous import server_directory
from .restarters import Restarter, detect_restarter
from .serving import ErrorApp, LoadFailure
from .serving.inflight import InFlight
from .settings import Options
from .target import WSGIApp, describe, import_app
from .threads import start_thread
from .warm.worker import (
    Reporter,
    ask_for_replacement,
    environ_at_django_setup,
    managed_run_dir,
)
from .watcher import Watcher
from .watching import ChangeFilter, Sources
from .watching.plan import change_ns

__all__ = ["Worker"]

logger = logging.getLogger("reloader")


class Worker:
    def __init__(self, target: str | WSGIApp, options: Options) -> None:
        self.target = target
        self.options = options
        self.django: DjangoBridge | None = None
        self.restarter: Restarter | None = None
        self.sources: Sources | None = None
        """What this process watches, from `boot()` on."""
        self.restarting = False
        self.stop_begun = False
        self.inflight = InFlight()
        self.shared: Path | None = None
        """The directory this process shares with the server's others (see `rendezvous`)."""
        self.refreshes: RefreshLog | None = None
        self.peers: Peers | None = None
        """This process's entry among the server's serving processes (default mode only)."""
        self.accept: ChangeFilter | None = None
        """What changes count (the user's ignore globs), from `boot()` on."""
        self.started_ns = 0
        """When this process began to load the application (`time.time_ns()`)."""
        self.replace_early: Callable[[], Callable[[], None] | None] = self._replace_if_ours
        """How a stop with requests in flight has the replacement started now (see
        `InFlight.hand_over`): in warm mode the arbiter, which knows a restart from its own
        stop, is asked."""
        self.publishes = True
        """Whether this process tells the others of the changes it sees: not in warm mode,
        where the supervisor does."""

    def boot(self) -> WSGIApp:
        """Wait for a burst of saves to settle, start watching, then load the target; return
        what to serve: the application (caught up with the other processes' template
        refreshes before each request), or an error page while it fails to load."""
        make_visible()
        make_stdout_line_buffered()
        self.restarter = detect_restarter()
        self.restarter.on_stop(self._stopping)
        sources = self.sources = Sources(self.options.extra_files)
        run = managed_run_dir()
        accept = self.accept = ChangeFilter(self.options.ignore, sources.cwd)
        self.shared = run.path if run is not None else server_directory(describe(self.target))
        self.publishes = run is None
        if self.shared is not None:
            share_library_lookups(self.shared)
        if run is not None:
            self.replace_early = functools.partial(ask_for_replacement, run)
        # Before anything is read: a burst of saves still going on is waited for.
        burst = BurstWatch.load(self.shared, accept)
        if burst is not None:
            burst.settle()
        started_ns = self.started_ns = time.time_ns()
        if run is None:
            Watcher(sources, accept, self.options.polling, self._changed).start()
        # In warm mode the import is short, and the supervisor judges it by its start alone.
        clock = ImportClock(burst.settle if burst is not None and run is None else None)
        sources.import_times = clock.times
        sources.loading = True
        environ_at_setup: AbstractContextManager[dict[str, str]] = (
            environ_at_django_setup() if run else contextlib.nullcontext({})
        )
        try:
            with environ_at_setup as environ, clock:
                served = self._load(sources)
        finally:
            sources.loading = False
        if burst is not None and burst.waited:
            logger.info("waited %.1f s for a burst of saves to settle", burst.waited)
        served = self.inflight.wrap(served)
        if self.django is not None and self.shared is not None:
            served = self._follow_refreshes(self.shared, served)
        if run is not None:
            # The arbiter's supervisor watches for this worker: tell it what to watch.
            loaded = not isinstance(served, ErrorApp)
            reporter = Reporter(run, sources, started_ns, loaded, environ)
            if self.django is not None:
                reporter.refresh_patterns = self.django.patterns
            reporter.extra_files = self.options.extra_files
            reporter.ignore, reporter.polling = self.options.ignore, self.options.polling
            reporter.report()
            if self.refreshes is not None:
                reporter.listen(self.refreshes.catch_up)
        # A file saved after we read it: we hold its old code. Restart like the others. (After
        # the report: from then on the supervisor covers a save in warm mode.)
        changes = sources.changes()
        late = sources.saved_since_read(changes, started_ns)
        if late:
            self._changed(late)
        elif run is None and self.shared is not None:
            # Outermost: a look that finds this process behind outdates it before the request
            # is served.
            served = self._join_peers(self.shared, started_ns, changes, served)
        return served

    def _join_peers(
        self,
        shared: Path,
        started_ns: int,
        changes: dict[Path, int],
        app: WSGIApp,
    ) -> WSGIApp:
        """Enter the register of serving processes (see `peers`), after the others that still
        hold code older than the last save we know of have noticed it; `app`, behind a look at
        the last restart before each request."""
        peers = self.peers = Peers(shared)
        peers.enter(started_ns)
        atexit.register(peers.withdraw)
        restart = last_restart(shared)
        saved_ns = max([*changes.values(), restart.changed_ns if restart else 0])
        now_ns = time.time_ns()
        left_ns = saved_ns + int(WAIT_S * 1e9) - now_ns
        if saved_ns <= now_ns and left_ns > 0:
            late_pids = peers.wait(saved_ns, left_ns / 1e9)
            if late_pids:
                logger.warning(
                    "serving although %s had not noticed the save yet",
                    ", ".join(f"process {pid}" for pid in late_pids),
                )
        return FollowRestarts(shared, self._restarted_elsewhere).wrap(app)

    def _restarted_elsewhere(self, restart: Restart) -> None:
        """Another process restarted (for the save in `restart`): restart too if we hold a file
        of it in a version older than the save, else move our entry on."""
        sources, peers, accept = self.sources, self.peers, self.accept
        if sources is None or peers is None or accept is None or self.restarting:
            return
        plan = sources.plan()
        paths = {Path(p) for p in restart.paths}
        changes = {p: change_ns(p) for p in paths if accept(p) and plan.matches(p)}
        stale = sources.saved_since_read(changes, self.started_ns)
        if stale:
            self._changed(stale)
        else:
            peers.enter(restart.changed_ns)

    def _follow_refreshes(self, shared: Path, app: WSGIApp) -> WSGIApp:
        """Share in-place refreshes with the server's other processes (see `refreshlog`):
        `app`, caught up with them before each request."""
        try:
            refreshes = RefreshLog(shared)
        except (OSError, ValueError) as exc:  # ValueError: a damaged generation file
            logger.warning("template refreshes are not shared with the other processes: %s", exc)
            return app
        refreshes.follow(self._changed)
        self.refreshes = refreshes
        return refreshes.wrap(app)

    def _load(self, sources: Sources) -> WSGIApp:
        if not isinstance(self.target, str):
            return self.target
        try:
            app = import_app(self.target)
            if django_ready():
                load_urlconf()
                # autoreload_started runs the apps' receivers: user code that may raise too.
                # Only a bridge that started offers changes to Django; while the error page
                # is served, every change restarts.
                bridge = DjangoBridge(sources, self.inflight.streams_open)
                bridge.start()
                self.django = bridge
        except (Exception, SystemExit) as exc:
            # A settings module's sys.exit() is a failed load; the server's stop is not.
            if isinstance(exc, SystemExit) and self.restarter and self.restarter.stopping():
                raise
            failure = LoadFailure.capture(self.target, exc)
            log_failure(failure.log_text())
            sources.add_failure(exc)
            return ErrorApp(failure, self.options.show_errors, self.options.trusted_hosts)
        reclaim_logger()  # so that restart lines reach the log too
        sources.add_files([])  # the watcher re-plans with everything the import brought
        return app

    def _stopping(self) -> None:
        # Run by a signal handler, in the main thread, between two steps of whatever it was
        # doing (or, at a quick stop, from a thread it started); a second SIGTERM (a
        # group-wide kill, then the arbiter's) runs it again inside the first. So the stop
        # begins once, and nothing here waits for a lock that the interrupted code may hold.
        if self.stop_begun:
            return
        self.stop_begun = True
        assert self.restarter is not None
        limit = self.restarter.graceful_limit
        grace = self.options.grace if limit is None else min(self.options.grace, limit)
        self.inflight.stop(grace)
        if self.inflight.streams_open():
            start_thread(wake_streams)  # their Event's lock: a sync worker's stream may hold it
        self.inflight.hand_over(self.replace_early)

    def _replace_if_ours(self) -> Callable[[], None] | None:
        if not self.restarting or self.restarter is None:
            return None  # the server's own stop: a replacement may not be wanted
        return self.restarter.replace_early()

    def _changed(self, paths: set[Path]) -> bool:
        """Called by the watcher thread; True once a restart is under way."""
        if self.django is not None:
            if self.refreshes is not None and self.publishes:
                # Before applying them here: from our next answer on, the others are behind.
                self.refreshes.publish(refreshable(paths, self.django.declared))
            paths -= self.django.refresh(paths)
            if not paths:
                return False
        assert self.restarter is not None
        if self.restarting:
            return True  # the check after loading and the watcher may both see one save
        self.restarting = True
        # Before the peers hear of it: once they do, they may answer with the new code.
        peers = self.peers
        if peers is None:
            self.inflight.outdate()
        else:
            saved_ns = max(map(change_ns, paths), default=0) or self.started_ns + 1
            self.inflight.outdate(functools.partial(peers.current_elsewhere, saved_ns))
            peers.withdraw()
        discard_bytecode(paths)
        if self.shared is not None and self.publishes:
            project = self.sources.project_directories() if self.sources else ()
            record_restart(self.shared, paths, project)
        name, pid = self.restarter.name, os.getpid()
        logger.info("restarting %s %d: changed %s", name, pid, describe_paths(paths))
        self.restarter.restart()
        return True

    def __repr__(self) -> str:
        return f"<Worker {describe(self.target)} pid={os.getpid()}>"
