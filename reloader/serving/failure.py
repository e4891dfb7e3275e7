"""A failed load of the application, kept for the error page and the log."""

from __future__ import annotations

import linecache
import secrets
import traceback
from dataclasses import dataclass
from pathlib import Path

from ..watching.sources import is_third_party

__all__ = ["Frame", "LoadFailure"]

_OWN_PACKAGE = Path(__file__).resolve().parent.parent
CONTEXT_LINES = 3
"""Source lines shown above and below the failing line of each of the user's frames."""


@dataclass(frozen=True)
class Frame:
    """One place in the traceback, with the source around it."""

    filename: str
    lineno: int
    function: str
    context: tuple[tuple[int, str], ...]
    """(line number, text) pairs around `lineno`."""


@dataclass(frozen=True)
class LoadFailure:
    """Why the application could not be loaded."""

    target: str
    error_id: str
    """Eight hex digits shown to clients who may not see details, and logged."""
    exc_type: str
    message: str
    user_frames: tuple[Frame, ...]
    """The frames in the user's own files, innermost last; a `SyntaxError`'s line included."""
    traceback_text: str
    """The whole traceback, chained exceptions included, as Python prints it."""

    @classmethod
    def capture(cls, target: str, exc: BaseException) -> LoadFailure:
        return cls(
            target=target,
            error_id=secrets.token_hex(4),
            exc_type=type(exc).__qualname__,
            message=_message(exc),
            user_frames=tuple(_user_frames(exc)),
            traceback_text="".join(_without_plumbing(exc).format()),
        )

    def log_text(self) -> str:
        return (
            f"could not load {self.target} [error id {self.error_id}]; "
            f"serving HTTP 500 until a change fixes it\n{self.traceback_text.rstrip()}"
        )


def _is_plumbing(filename: str) -> bool:
    """Frames of our own loader and of the import system, above the user's first frame."""
    return (
        filename.startswith("<frozen importlib")
        or _is_ours(filename)
        or (filename.endswith("importlib/__init__.py"))
    )


def _without_plumbing(exc: BaseException) -> traceback.TracebackException:
    report = traceback.TracebackException.from_exception(exc)
    frames = list(report.stack)
    while frames and _is_plumbing(frames[0].filename):
        frames.pop(0)
    report.stack = traceback.StackSummary.from_list(frames)
    return report


def _is_ours(filename: str) -> bool:
    path = Path(filename).absolute()
    return path == _OWN_PACKAGE or _OWN_PACKAGE in path.parents


def _message(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        return str(exc.msg)
    return str(exc)


def _is_users(filename: str) -> bool:
    if filename.startswith("<"):
        return False
    if _is_ours(filename):
        return False
    return not is_third_party(Path(filename).absolute())


def _frame(filename: str, lineno: int, function: str) -> Frame:
    linecache.checkcache(filename)  # the file was just edited: never show a cached copy
    first = max(1, lineno - CONTEXT_LINES)
    context = tuple(
        (n, linecache.getline(filename, n).rstrip("\n"))
        for n in range(first, lineno + CONTEXT_LINES + 1)
        if linecache.getline(filename, n)
    )
    return Frame(filename, lineno, function, context)


def _user_frames(exc: BaseException) -> list[Frame]:
    frames = [
        _frame(summary.filename, summary.lineno or 0, summary.name)
        for summary in traceback.extract_tb(exc.__traceback__)
        if _is_users(summary.filename)
    ]
    if isinstance(exc, SyntaxError) and exc.filename and _is_users(exc.filename):
        frames.append(_frame(exc.filename, exc.lineno or 0, "(syntax error)"))
    return frames
