"""The worker's side of a warm server: no watcher of its own; it reports what it depends on
to the run directory, and applies refresh requests from the supervisor."""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from ..integrations.django import django_ready
from ..restarters.gunicorn import in_gunicorn_worker
from ..watching import Pattern, Sources
from ..watching.sources import is_third_party, module_file
from .rundir import ENV, Report, RunDir
from .supervisor import SIGNAL

__all__ = ["Reporter", "after_request", "environ_at_django_setup", "managed_run_dir"]

logger = logging.getLogger("reloader")

_current: Reporter | None = None


def managed_run_dir() -> RunDir | None:
    """The run directory when this is a worker of a warm gunicorn server."""
    path = os.environ.get(ENV)
    if not path or not in_gunicorn_worker():
        return None
    return RunDir(Path(path))


@contextlib.contextmanager
def environ_at_django_setup() -> Iterator[dict[str, str]]:
    """Fill the dict yielded with the environment as it is when `django.setup()` starts
    inside the block: what the WSGI file set before (`load_dotenv()`, `setdefault`), without
    what the settings set themselves, which the arbiter's setup must be free to set anew."""
    environ: dict[str, str] = {}
    if importlib.util.find_spec("django") is None:
        yield environ
        return
    import django

    original = django.setup

    def setup(*args: Any, **kwargs: Any) -> None:
        if not environ:
            environ.update(os.environ)
        original(*args, **kwargs)

    django.setup = setup  # get_wsgi_application() looks it up at each call
    try:
        yield environ
    finally:
        django.setup = original


def _triples(patterns: set[Pattern]) -> list[tuple[str, str, bool]]:
    return sorted((str(p.directory), p.glob, p.recursive) for p in patterns)


class Reporter:
    def __init__(
        self,
        run: RunDir,
        sources: Sources,
        started_ns: int,
        loaded: bool,
        environ: dict[str, str],
    ) -> None:
        self.run = run
        self.environ = environ
        self.sources = sources
        self.started_ns = started_ns
        self.loaded = loaded
        self.refresh_patterns: set[Pattern] = set()
        self.extra_files: tuple[str, ...] = ()
        self.ignore: tuple[str, ...] = ()
        self.polling = False
        # gthread's threads report after requests at once: the report written last must be
        # the one that saw the most, or a module imported meanwhile is never watched.
        self._lock = threading.Lock()

    def report(self) -> None:
        global _current
        _current = self
        with self._lock:
            self._report()

    def _report(self) -> None:
        plan = self.sources.plan()
        modules = [
            name
            for name, module in list(sys.modules.items())
            if module is not None
            and (path := module_file(module)) is not None
            and is_third_party(path)
        ]
        report = Report(
            pid=os.getpid(),
            started_ns=self.started_ns,
            files=sorted(str(f) for f in plan.files),
            patterns=_triples(set(plan.patterns) - self.refresh_patterns),
            refresh_patterns=_triples(self.refresh_patterns),
            modules=modules,
            loaded=self.loaded,
            django_settings=os.environ.get("DJANGO_SETTINGS_MODULE", "") if django_ready() else "",
            sys_path=list(sys.path),
            extra_files=list(self.extra_files),
            ignore=list(self.ignore),
            polling=self.polling,
            environ=self.environ,
        )
        try:
            self.run.write_report("worker", report)
        except FileNotFoundError:
            pass  # gone when the arbiter re-executes while this worker finishes its requests
        except OSError as exc:
            # Serving matters more than this report; the arbiter replaces a removed run
            # directory and restarts the workers.
            logger.error("worker %d cannot report what to watch: %s", os.getpid(), exc)

    def listen(self, catch_up: Callable[[], None]) -> None:
        """Apply the refreshes the supervisor published (see `refreshlog`) as soon as it
        signals them, not only before the next request: a stream this process holds (a live
        reload's) hears of them now."""

        def refresh(_signum: int, _frame: FrameType | None) -> None:
            catch_up()

        signal.signal(SIGNAL, refresh)


def ask_for_replacement(run: RunDir) -> None:
    """For a worker that stops with requests in flight: ask the arbiter to fork its
    replacement now (it does while it serves on, see `WarmArbiter.let_finish`; a stop of the
    whole server never reads the request)."""
    arbiter = os.getppid()
    with contextlib.suppress(OSError):
        run.request_replacement(os.getpid())
        if arbiter > 1:
            os.kill(arbiter, SIGNAL)


def after_request() -> None:
    """For gunicorn's post_request hook: report again when a request imported modules (Django
    imports most views on the first request)."""
    if _current is not None and _current.sources.modules_changed():
        _current.report()
