"""The `reloader` logger, and stdout that reaches the console at once."""

from __future__ import annotations

import contextlib
import io
import logging
import sys
from collections.abc import Collection
from pathlib import Path

__all__ = [
    "describe_paths",
    "log_failure",
    "logger",
    "make_stdout_line_buffered",
    "make_visible",
    "reclaim_logger",
]

NAMES_IN_LOG = 5
"""Changed files named in a log line before '... and N more'."""

logger = logging.getLogger("reloader")

FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s"
"""gunicorn's own log format, so our lines sit well among its lines."""
DATE_FORMAT = "%Y-%m-%d %H:%M:%S %z"


_FORMATTER = logging.Formatter(FORMAT, DATE_FORMAT)
_own_handlers: list[logging.Handler] = []
"""The handler `make_visible` added, if it did."""


def make_visible() -> None:
    """Give the logger a stderr handler at INFO when nothing in the process configured logging
    (gunicorn's default configures only its own loggers). A user's configuration wins."""
    if logger.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_FORMATTER)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    _own_handlers[:] = [handler]


def reclaim_logger() -> None:
    """Undo what loading the application did to our logger without meaning to. Django's
    LOGGING goes through `dictConfig`, which disables every logger its dict does not name
    (unless it says `disable_existing_loggers: False`): the traceback the error page points
    to would vanish. And once the user has root handlers, ours would route our lines past
    them: hand over to theirs. A configuration that names `reloader` itself is left alone."""
    logger.disabled = False
    ours = [h for h in logger.handlers if h in _own_handlers]
    if ours and logging.getLogger().handlers:
        for handler in ours:
            logger.removeHandler(handler)
        logger.propagate = True


def log_failure(text: str) -> None:
    """Log a failed load where the user looks. Should their configuration still drop errors
    of `reloader` (a level above ERROR), write it to stderr, the server's log, instead: the
    page served meanwhile says 'see the server log'."""
    reclaim_logger()
    if logger.isEnabledFor(logging.ERROR):
        logger.error(text)
    else:
        record = logger.makeRecord(logger.name, logging.ERROR, "", 0, text, (), None)
        sys.stderr.write(_FORMATTER.format(record) + "\n")


def make_stdout_line_buffered() -> None:
    """Python block-buffers stdout when it is a pipe (docker logs, systemd, CI): `print()` from
    a view would show up kilobytes later, or never if the worker is killed. Flush per line."""
    stream = sys.stdout
    if isinstance(stream, io.TextIOWrapper) and not stream.line_buffering:
        with contextlib.suppress(OSError, ValueError):
            stream.reconfigure(line_buffering=True)


def describe_paths(paths: Collection[Path]) -> str:
    """'a.py, b/c.py and 3 more', relative to the working directory where possible."""
    cwd = Path.cwd()
    shown = sorted(str(p.relative_to(cwd)) if cwd in p.parents else str(p) for p in paths)
    more = len(shown) - NAMES_IN_LOG
    text = ", ".join(shown[:NAMES_IN_LOG])
    return f"{text} and {more} more" if more > 0 else text
