"""`python -m reloader.warm RUN_DIR ARBITER_PID [SINCE_NS]`: the supervisor process of a warm
gunicorn server, started by its arbiter. Options come from the environment the arbiter passes
on. SINCE_NS is when the arbiter started this supervisor, or, for one that replaces one that
died, that one: what was saved since then counts as changed, so no save made while none
watched is lost."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from ..log import make_visible
from ..settings import read_options
from ..threads import StopFlag
from ..watcher import Watcher
from ..watching import ChangeFilter
from .rundir import RunDir
from .supervisor import SIGNAL, ReportedSources, Supervisor

STEP_MS = 20
"""The watcher's step (see `monitors.STEP_MS`): shorter than a serving process's, since this
process serves nothing. A save is seen 20-40 ms after it instead of 50-100 ms, for about 0.15 %
of a core more while idle."""


def main(argv: list[str]) -> None:
    make_visible()
    run, arbiter_pid = RunDir(Path(argv[0])), int(argv[1])
    since_ns = int(argv[2]) if len(argv) > 2 else None
    options = read_options({})
    supervisor = Supervisor(run, arbiter_pid)
    sources = supervisor.sources
    accept = RunDirFilter(run.path, options.ignore, sources)

    def changed(paths: set[Path]) -> bool:
        done = supervisor.changed(paths)
        # Asked for by a worker's wrap(polling=True): the watcher re-plans after a report.
        watcher.force_polling = watcher.force_polling or sources.polling
        return done

    # (Reports written before we started are read already, and bring no event.)
    polling = options.polling or sources.polling
    watcher = Watcher(sources, accept, polling, changed, STEP_MS, keep_going=True)
    watcher.start(since_ns)
    idle = StopFlag()
    # Outlive the arbiter never; it stops us before it re-execs.
    while os.getppid() == arbiter_pid:
        if not run.path.is_dir():
            os.kill(arbiter_pid, SIGNAL)  # it makes the directory again
        idle.wait(1.0)
    watcher.stop()
    # The arbiter ended without its on_exit, which removes the run directory: gunicorn halting
    # on a worker that failed to boot raises again inside its own halt() and skips the hook.
    shutil.rmtree(run.path, ignore_errors=True)


class RunDirFilter(ChangeFilter):
    """The ignore globs of the environment and of the workers' reports (given to `wrap()`).
    They are about the project: `*.json` must not hide the reports through which the workers
    tell what to watch."""

    def __init__(self, run_dir: Path, user_globs: tuple[str, ...], sources: ReportedSources):
        super().__init__(user_globs)
        self.run_dir = run_dir
        self.sources = sources
        self.own_globs = user_globs
        self.reported: frozenset[str] = frozenset()

    def __call__(self, path: Path) -> bool:
        if path.parent == self.run_dir:
            return True
        if self.sources.ignore != self.reported:
            self.reported = self.sources.ignore
            # Rebuilt only when the reports' globs change: this runs for every file of a plan.
            super().__init__((*self.own_globs, *sorted(self.reported)))
        return super().__call__(path)


main(sys.argv[1:])
