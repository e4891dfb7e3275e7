"""Replacing the arbiter's process image: same pid, same listening sockets (connections wait
in their backlog), a fresh interpreter.

A failed exec leaves no server at all, so the new image's start-up is tried first in a child
process: gunicorn parses the command line and reads the configuration file, and the hooks
import. gunicorn's own USR2 instead starts the new master as a child and keeps the old one
until it is up; that changes the server's pid, which the terminal, systemd or a test harness
is waiting on, so a trial run it is. It catches what breaks a start (a half-typed
`gunicorn.conf.py`, a half-finished `pip install` of gunicorn or of this package); what
breaks only the application shows in the workers' error page, as in per-worker mode.

The trial costs a Python start and gunicorn's imports (0.2 s, more on a busy machine) before
every re-exec. A models or settings edit cannot change its outcome: only the files the
start-up reads can, and those are the modules imported before the application (gunicorn, its
configuration file, this package) and the interpreter. While none of them changed since this
process started, the new image starts as this one did, and the trial is spared.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

from ..settings import ORPHANS_VARIABLE
from ..watching.plan import change_ns
from ..watching.sources import module_file

__all__ = [
    "ORPHANS_ENV",
    "StartUp",
    "carried_orphans",
    "exec_new_image",
    "reap_orphans",
    "start_problem",
]

ORPHANS_ENV = ORPHANS_VARIABLE
"""Set by a re-exec for the new image: the pids of the old image's workers, still finishing
their requests. They are children of the new image, which must reap them."""

CHECK_SECONDS = 60.0

TRIAL = """
import sys
sys.argv[0] = "gunicorn"
from gunicorn.app.wsgiapp import WSGIApplication
WSGIApplication("%(prog)s [OPTIONS] [APP_MODULE]")  # reads the command line and config file
import reloader.warm.arbiter
"""


CLOCK_SLACK_NS = 1_000_000_000
"""How much earlier than /proc says this process is taken to have started: the kernel counts
in clock ticks from boot, and the wall clock may have been stepped since."""


def process_started_ns() -> int | None:
    """When this process started (its fork, not its latest exec: earlier, so on the safe
    side), as `time.time_ns()` would have said then; None where /proc does not tell."""
    try:
        with open("/proc/self/stat", "rb") as stat:
            after_name = stat.read().rsplit(b")", 1)[1].split()
        ticks = int(after_name[19])  # field 22, starttime; the list starts at field 3
        booted_ns = time.time_ns() - time.clock_gettime_ns(time.CLOCK_BOOTTIME)
        return booted_ns + ticks * 1_000_000_000 // os.sysconf("SC_CLK_TCK") - CLOCK_SLACK_NS
    except (OSError, ValueError, IndexError, AttributeError):
        return None


class StartUp:
    """What a new image's start-up reads before the application: made when the arbiter's
    hooks start, so it holds gunicorn, the configuration and this package."""

    def __init__(self) -> None:
        self.started_ns = process_started_ns()
        modules = [module_file(m) for m in list(sys.modules.values()) if m is not None]
        self.files = frozenset({Path(sys.executable), *(f for f in modules if f is not None)})

    def changed(self) -> bool:
        """Whether a file of the start-up changed (or went) since this process started:
        True when that cannot be told."""
        since = self.started_ns
        return since is None or any(not (0 < change_ns(f) <= since) for f in self.files)


def start_problem(environ: dict[str, str], cwd: str) -> str | None:
    """Why the new image would not start, in a line, or None."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", TRIAL, *sys.argv[1:]],
            env=environ,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=CHECK_SECONDS,
        )
    except subprocess.TimeoutExpired:
        return f"its start-up took more than {CHECK_SECONDS:.0f} s"
    except OSError as exc:
        return str(exc)
    if done.returncode == 0:
        return None
    output = (done.stdout + done.stderr).decode(errors="replace").strip().splitlines()
    return " | ".join(line.strip() for line in output[-4:]) or f"exit code {done.returncode}"


def exec_new_image(arbiter: Any, environ: dict[str, str], orphans: list[int]) -> NoReturn:
    """Become a fresh gunicorn, with gunicorn's own re-exec protocol (USR2): take over these
    sockets, then find the "old master" (ourselves) gone and promote itself."""
    environ[ORPHANS_ENV] = ",".join(map(str, orphans))
    environ["GUNICORN_PID"] = str(os.getpid())
    environ["GUNICORN_FD"] = ",".join(str(s.fileno()) for s in arbiter.LISTENERS)
    for listener in arbiter.LISTENERS:
        os.set_inheritable(listener.fileno(), True)
    os.chdir(arbiter.START_CTX["cwd"])
    # The command line as typed: gunicorn's own record of it turns `python -m gunicorn`
    # into a run of gunicorn/__main__.py, which puts gunicorn's package dir on sys.path.
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], environ)


def carried_orphans() -> list[int]:
    text = os.environ.pop(ORPHANS_ENV, "")
    return [int(pid) for pid in text.split(",") if pid.isdigit()]


def reap_orphans(pids: list[int]) -> list[int]:
    """Reap those of `pids` that exited; the ones still running. An old worker that exits
    before gunicorn handles SIGCHLD (while the new image starts) sends its signal to no
    handler, and gunicorn never reaps it; any later exit does reach gunicorn's reaping."""
    running = []
    for pid in pids:
        with contextlib.suppress(ChildProcessError):  # gunicorn's waitpid(-1) took it
            if os.waitpid(pid, os.WNOHANG) == (0, 0):
                running.append(pid)
    return running
