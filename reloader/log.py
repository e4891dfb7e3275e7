"""The `reloader` logger, and stdout that reaches the console at once."""

from __future__ import annotations

import contextlib
import io
import logging
import sys
from collections.abc import Collection
from pathlib import Path

__all__ = ["describe_paths", "logger", "make_stdout_line_buffered", "make_visible"]

NAMES_IN_LOG = 5
"""Changed files named in a log line before '... and N more'."""

logger = logging.getLogger("reloader")

FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s"
"""gunicorn's own log format, so our lines sit well among its lines."""
DATE_FORMAT = "%Y-%m-%d %H:%M:%S %z"


def make_visible() -> None:
    """Give the logger a stderr handler at INFO when nothing in the process configured logging
    (gunicorn's default configures only its own loggers). A user's configuration wins."""
    if logger.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT, DATE_FORMAT))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


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
