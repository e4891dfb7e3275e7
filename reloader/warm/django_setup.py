"""`django.setup()` in the arbiter, so each worker is forked with the settings read, every
app's models imported and `ready()` run: what is left of a Django worker's boot once the
third-party modules are preloaded, and most of it.

The arbiter then holds project code (settings, models, admin modules): the supervisor
watches those files as the arbiter's, and an edit of one re-execs the arbiter.

`apps.populate()` cannot be undone, so instead of rolling back, what setup left behind is
checked: a setup that raises, starts a thread, opens a descriptor other than a log file's, or
connects to a database has spoiled the arbiter, and the caller re-execs it without this tier.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .footprint import Footprint
from .opened import recording_opens
from .rundir import Report

__all__ = ["DjangoSetup", "SetupProblem"]

SETTINGS_ENV = "DJANGO_SETTINGS_MODULE"


def _all_loggers() -> Iterator[logging.Logger]:
    yield logging.getLogger()
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger):
            yield logger


def _log_file_fds() -> set[int]:
    """Descriptors of the streams logging handlers write to: a project's LOGGING may open
    its log files at setup, and appending to one file from every worker is what it wants."""
    fds = set()
    for logger in _all_loggers():
        for handler in logger.handlers:
            stream = getattr(handler, "stream", None)
            try:
                fds.add(stream.fileno())  # type: ignore[union-attr]
            except (AttributeError, OSError, ValueError):
                continue
    return fds


def _connected_databases() -> list[str]:
    if "django.db" not in sys.modules:
        return []
    from django.db import connections

    return [c.alias for c in connections.all(initialized_only=True) if c.connection is not None]


@dataclass(frozen=True)
class SetupProblem:
    what: str
    """What went wrong, as a phrase: 'starts a thread', 'ImportError: ...'."""
    raised: bool
    """True when setup raised (a broken module, perhaps fixed by the next save); False when
    it worked but left something a fork must not hand down (it would again)."""


class DjangoSetup:
    """Whether and with what settings the arbiter ran `django.setup()`."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.settings_module: str | None = None
        """What setup ran with; None until it ran."""
        self.opened: frozenset[Path] = frozenset()
        """The project's files setup read (`.env`, config files): the arbiter holds them."""

    def due(self, reports: list[Report]) -> Report | None:
        """A report to set up from, when every worker runs the same Django project and loaded
        it: a failed load may mean a broken settings or models module, which setup would hit
        too."""
        if not self.enabled or self.settings_module is not None or not reports:
            return None
        if not all(r.loaded and r.django_settings for r in reports):
            return None
        if len({r.django_settings for r in reports}) != 1:
            return None
        return reports[0]

    def other_settings(self, reports: Iterable[Report]) -> str | None:
        """A settings module some worker runs that is not the one set up here (its WSGI file
        chose another): the arbiter must start afresh."""
        if self.settings_module is None:
            return None
        others = {r.django_settings for r in reports} - {"", self.settings_module}
        return min(others, default=None)

    def run(self, report: Report) -> SetupProblem | None:
        """Run `django.setup()` as the reporting worker did; what went wrong, or None."""
        self.settings_module = report.django_settings
        sys.path.extend(p for p in report.sys_path if p not in sys.path)
        footprint = Footprint()
        # A LOGGING with disable_existing_loggers would silence gunicorn's own loggers here.
        disabled = {logger: logger.disabled for logger in _all_loggers()}
        # Setup sees the environment the worker's WSGI file made (what `load_dotenv()` or
        # `os.environ.setdefault(...)` set there before get_wsgi_application()), and only
        # setup does: each worker's WSGI file makes it again, as in per-worker mode.
        previous = dict(os.environ)
        os.environ.update(report.environ)
        os.environ[SETTINGS_ENV] = report.django_settings
        try:
            with recording_opens() as opened:
                import django

                django.setup(set_prefix=False)  # as get_wsgi_application() does
        except BaseException as exc:
            return SetupProblem(f"{type(exc).__name__}: {exc}", raised=True)
        finally:
            os.environ.clear()
            os.environ.update(previous)
            for logger, was in disabled.items():
                logger.disabled = was
        self.opened = frozenset(opened)
        connected = _connected_databases()
        grown = footprint.grown(allowed_fds=_log_file_fds())
        if connected:
            grown = f"connects to the database ({', '.join(connected)})"
        return None if grown is None else SetupProblem(grown, raised=False)
