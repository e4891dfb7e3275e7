"""What a warm parent (the arbiter, or the Django tier) holds, as a report for the supervisor:
every file its modules came from, plus what its settings may have read."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path

from ..watching import Sources
from ..watching.sources import module_file
from .rundir import Report

__all__ = ["held_report"]


def held_report(
    started_ns: int,
    config: object = None,
    opened: Iterable[Path] = (),
    extra_files: Iterable[str] = (),
) -> Report:
    """This process's report; the files new in it were imported after `started_ns`, so a save
    since then means they are stale already. `config` is gunicorn's configuration file, if
    any; `opened` the project's files Django's setup read and `extra_files` the workers'
    extra files (both once Django is set up here: the settings held may have read them, so
    a change of one needs a new parent, not only new workers)."""
    files = {
        str(path)
        for module in list(sys.modules.values())
        if module is not None and (path := module_file(module)) is not None
    }
    if isinstance(config, str) and os.path.isfile(config):
        files.add(os.path.abspath(config))
    files.update(str(f) for f in opened)
    declared, patterns = Sources(sorted(extra_files)).declared()
    files.update(str(f) for f in declared)
    triples = sorted((str(p.directory), p.glob, p.recursive) for p in patterns)
    return Report(pid=os.getpid(), started_ns=started_ns, files=sorted(files), patterns=triples)
