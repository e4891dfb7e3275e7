"""One serving process: load the application, watch what it depends on, restart on change.

A `Worker` is booted once in each process that serves requests (a gunicorn worker, a mod_wsgi
daemon process). It never imports the application twice: every recovery, from a fixed bug or
a changed module alike, is a fresh process, which is also the only way Django can retry
`apps.populate()`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from contextlib import AbstractContextManager
from pathlib import Path

from .bytecode import discard_bytecode
from .integrations.django import DjangoBridge, django_ready, load_urlconf
from .log import (
    describe_paths,
    log_failure,
    make_stdout_line_buffered,
    make_visible,
    reclaim_logger,
)
from .monitors import STEP_MS
from .restarters import Restarter, detect_restarter
from .serving import ErrorApp, LoadFailure
from .serving.inflight import InFlight
from .settings import Options
from .target import WSGIApp, describe, import_app
from .warm.worker import Reporter, environ_at_django_setup, managed_run_dir
from .watcher import Watcher
from .watching import ChangeFilter, Sources
from .watching.plan import saved_after

__all__ = ["NOTICE_NS", "Worker"]

logger = logging.getLogger("reloader")

NOTICE_NS = (2 * STEP_MS + 50) * 1_000_000
"""How long after a save every other worker's watcher has seen it: two watch steps, and time
to act on it."""


class Worker:
    def __init__(self, target: str | WSGIApp, options: Options) -> None:
        self.target = target
        self.options = options
        self.django: DjangoBridge | None = None
        self.restarter: Restarter | None = None
        self.restarting = False
        self.inflight = InFlight()

    def boot(self) -> WSGIApp:
        """Start watching, then load the target; return what to serve: the application, or an
        error page while it fails to load."""
        make_visible()
        make_stdout_line_buffered()
        started_ns = time.time_ns()
        self.restarter = detect_restarter()
        self.restarter.on_graceful_stop(self._stopping)
        sources = Sources(self.options.extra_files)
        run = managed_run_dir()
        if run is None:
            accept = ChangeFilter(self.options.ignore, sources.cwd)
            Watcher(sources, accept, self.options.polling, self._changed).start()
        sources.loading = True
        environ_at_setup: AbstractContextManager[dict[str, str]] = (
            environ_at_django_setup() if run else contextlib.nullcontext({})
        )
        try:
            with environ_at_setup as environ:
                served = self._load(sources)
        finally:
            sources.loading = False
        if run is not None:
            # The arbiter's supervisor watches for this worker: tell it what to watch.
            loaded = not isinstance(served, ErrorApp)
            reporter = Reporter(run, sources, started_ns, loaded, environ)
            if self.django is not None:
                reporter.refresh_patterns = self.django.patterns
            reporter.extra_files = self.options.extra_files
            reporter.ignore, reporter.polling = self.options.ignore, self.options.polling
            reporter.report()
            reporter.listen(self._changed)
        # A file saved while we loaded: we may hold its old code or its new one. Either way
        # we must not answer before the others noticed the save, or we could be the first
        # fresh answer while they still serve the old code: restart like them. (After the
        # report: from then on the supervisor covers a save in warm mode.)
        changes = sources.changes()
        late = saved_after(changes, started_ns)
        if late:
            self._changed(late)
        elif run is None:
            _let_others_notice(changes)
        return self.inflight.wrap(served)

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
        assert self.restarter is not None
        limit = self.restarter.graceful_limit
        grace = self.options.grace if limit is None else min(self.options.grace, limit)
        self.inflight.stop(grace)

    def _changed(self, paths: set[Path]) -> bool:
        """Called by the watcher thread; True once a restart is under way."""
        if self.django is not None:
            paths -= self.django.refresh(paths)
            if not paths:
                return False
        assert self.restarter is not None
        if self.restarting:
            return True  # the check after loading and the watcher may both see one save
        self.restarting = True
        discard_bytecode(paths)
        name, pid = self.restarter.name, os.getpid()
        logger.info("restarting %s %d: changed %s", name, pid, describe_paths(paths))
        self.restarter.restart()
        return True

    def __repr__(self) -> str:
        return f"<Worker {describe(self.target)} pid={os.getpid()}>"


def _let_others_notice(changes: dict[Path, int]) -> None:
    """A worker that loaded just after a save serves its new code. In the default mode each
    worker sees the save on its own, a watch step or two after it: until then another may
    still answer with the old code, after ours. A worker that loads in less than that (a small
    application) waits the rest; a Django project takes longer to load and never waits.
    (In warm mode the supervisor stops every stale worker at once, before their replacements
    are forked.)"""
    now = time.time_ns()
    recent = [ns for ns in changes.values() if now - NOTICE_NS < ns <= now]
    if recent:
        time.sleep((max(recent) + NOTICE_NS - now) / 1e9)
