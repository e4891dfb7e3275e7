"""runserver's access log for gunicorn: `--logger-class reloader.accesslog.RunserverLogger`.

    [01/Dec/2026 10:15:00] "GET / HTTP/1.1" 200 1234

coloured by status as runserver colours it when the access log goes to a terminal, plain
when it goes to a pipe or a file, or when NO_COLOR is set (https://no-color.org). Loaded by
gunicorn only (`python -m reloader` names it): it imports gunicorn, `import reloader` never
imports it.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from typing import Any

from gunicorn.glogging import Logger

__all__ = ["RunserverLogger", "colour_for", "format_line"]

RESET = "\x1b[0m"


def colour_for(status: int) -> str:
    """The ANSI attributes of Django's default palette (django.utils.termcolors, DARK) for
    a status: bold for 1xx, none for 2xx, cyan for 304, green for other 3xx, yellow for 404,
    bold red for other 4xx, bold magenta for 5xx."""
    if status < 200:
        return "1"
    if status < 300:
        return ""
    if status == 304:
        return "36"
    if status < 400:
        return "32"
    if status == 404:
        return "33"
    if status < 500:
        return "31;1"
    return "35;1"


def format_line(
    when: time.struct_time, request: str, status: str, size: str, colour: bool = False
) -> str:
    """One access line in runserver's format, with its colour when `colour`."""
    line = f'[{time.strftime("%d/%b/%Y %H:%M:%S", when)}] "{request}" {status} {size}'
    code = colour_for(int(status)) if colour and status.isdigit() else ""
    return f"\x1b[{code}m{line}{RESET}" if code else line


def _wants_colour(cfg: Any) -> bool:
    # gunicorn's "-" access log is sys.stdout (glogging.Logger.setup).
    return cfg.accesslog == "-" and sys.stdout.isatty() and not os.environ.get("NO_COLOR")


class RunserverLogger(Logger):  # type: ignore[misc]  # gunicorn ships no type hints
    """gunicorn's logger with runserver's access lines; error log lines are unchanged."""

    colour = False

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        self.colour = _wants_colour(cfg)

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        # Newer gunicorn says when no access log is configured, to skip the work; in older
        # ones the access logger then simply has no handler (and does not propagate).
        if not getattr(self, "access_log_enabled", True):
            return
        try:
            atoms = self.atoms(resp, req, environ, request_time)
            line = format_line(time.localtime(), atoms["r"], str(atoms["s"]), atoms["b"],
                               self.colour)  # fmt: skip
            self.access_log.info(line)
        except Exception:
            # As gunicorn does: a broken log line must not break the response.
            self.error(traceback.format_exc())
