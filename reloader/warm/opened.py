"""The files the arbiter reads while it sets Django up: settings that read `.env`, a TOML
config, a JSON of feature flags, an app's `ready()` reading a file. Workers are forked with
what was read, so a change of one of these files is a change of what the arbiter holds.

Found with an audit hook (`sys.addaudithook`), which cannot be removed: it stays in the
arbiter and its workers, and does nothing but one test while not recording.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..watching.sources import is_third_party

__all__ = ["recorded_so_far", "recording_opens"]

_recording: set[str] | None = None
_installed = False

NOT_FILES = ("/dev/", "/proc/", "/sys/")


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if _recording is None or event != "open":
        return
    path, mode, flags = args
    if isinstance(path, int):
        return  # an open descriptor: its file was opened (and seen) before
    if isinstance(mode, str):
        reading = not any(letter in mode for letter in "wax+")
    else:  # os.open: no mode, only flags
        reading = isinstance(flags, int) and flags & os.O_ACCMODE == os.O_RDONLY
    if reading:
        with contextlib.suppress(TypeError, ValueError):
            _recording.add(os.fsdecode(os.fspath(path)))


@contextlib.contextmanager
def recording_opens() -> Iterator[set[Path]]:
    """Collect, in the set yielded, the project's files opened for reading inside the block:
    regular files outside the standard library and installed packages, bytecode left out."""
    global _recording, _installed
    if not _installed:
        sys.addaudithook(_hook)
        _installed = True
    opened: set[Path] = set()
    names: set[str] = set()
    _recording = names
    try:
        yield opened
    finally:
        _recording = None
        opened.update(_project_files(names))


def recorded_so_far() -> set[Path]:
    """What the block of `recording_opens` that runs has collected yet (a spare tier's, as
    it parks inside its setup); nothing outside one."""
    return _project_files(set(_recording or ()))


def _project_files(names: set[str]) -> set[Path]:
    files = set()
    for name in names:
        path = Path(name).absolute()
        if (
            not name.startswith(NOT_FILES)
            and path.suffix != ".pyc"
            and not is_third_party(path)
            and path.is_file()
        ):
            files.add(path)
    return files
