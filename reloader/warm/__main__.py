"""`python -m reloader.warm RUN_DIR ARBITER_PID`: the supervisor process of a warm gunicorn
server, started by its arbiter. Options come from the environment the arbiter passes on."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..log import make_visible
from ..settings import read_options
from ..threads import StopFlag
from ..watcher import Watcher
from ..watching import ChangeFilter
from .rundir import RunDir
from .supervisor import Supervisor

STEP_MS = 20
"""The watcher's step (see `monitors.STEP_MS`): shorter than a serving process's, since this
process serves nothing. A save is seen 20-40 ms after it instead of 50-100 ms, for about 0.15 %
of a core more while idle."""


def main(argv: list[str]) -> None:
    make_visible()
    run, arbiter_pid = RunDir(Path(argv[0])), int(argv[1])
    options = read_options({})
    supervisor = Supervisor(run, arbiter_pid)
    accept = ChangeFilter(options.ignore)
    watcher = Watcher(supervisor.sources, accept, options.polling, supervisor.changed, STEP_MS)
    watcher.start()
    idle = StopFlag()
    # Outlive neither the arbiter nor our purpose (after asking for a re-exec).
    while os.getppid() == arbiter_pid and not watcher.stop_flag.is_set():
        idle.wait(1.0)
    watcher.stop()


main(sys.argv[1:])
