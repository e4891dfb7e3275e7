"""The arbiter's side of a warm server: start the supervisor, warm up before each fork,
re-exec on request. Everything here runs in gunicorn's hooks, in the arbiter's main thread."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
from types import FrameType
from typing import Any

from ..log import make_visible
from ..settings import read_options
from ..watching.sources import module_file
from .preload import Preloader
from .rundir import ENV, Report, RunDir
from .supervisor import SIGNAL

__all__ = ["WarmArbiter"]

logger = logging.getLogger("reloader")

COLD_WORKERS = ("gevent", "eventlet", "tornado")
"""Worker classes that must patch the standard library before anything imports it: nothing is
preloaded for them, the supervisor still watches."""


class WarmArbiter:
    def __init__(self, server: Any) -> None:
        self.server = server
        self.pid = os.getpid()
        self.run = RunDir.create()
        self.preloader = Preloader()
        worker_class = str(getattr(server.cfg, "worker_class_str", ""))
        self.warm = not any(name in worker_class for name in COLD_WORKERS)
        self.supervisor: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        make_visible()
        read_options({})  # a bad RELOADER_* value stops the server here, not in every worker
        os.environ[ENV] = str(self.run.path)
        self._report()
        self.supervisor = subprocess.Popen(
            [sys.executable, "-m", "reloader.warm", str(self.run.path), str(self.pid)]
        )
        signal.signal(SIGNAL, self._reexec)
        mode = "workers are forked warm" if self.warm else "nothing is preloaded for it"
        logger.info("one watcher for the server (pid %d); %s", self.supervisor.pid, mode)

    def before_fork(self) -> None:
        """Import what the workers reported, so the next one starts with it done."""
        if not self.warm:
            return
        names = dict.fromkeys(n for r in self.run.reports("worker") for n in r.modules)
        if names and self.preloader.preload(names):
            self._report()

    def _report(self) -> None:
        files = {
            str(path)
            for module in list(sys.modules.values())
            if module is not None and (path := module_file(module)) is not None
        }
        config = getattr(self.server.cfg, "config", None)
        if isinstance(config, str) and os.path.isfile(config):
            files.add(os.path.abspath(config))
        self.run.write_report("arbiter", Report(pid=self.pid, files=sorted(files)))

    def worker_exited(self, pid: int) -> None:
        self.run.remove_worker(pid)

    def stop(self) -> None:
        if self.supervisor is not None and self.supervisor.poll() is None:
            self.supervisor.terminate()
        shutil.rmtree(self.run.path, ignore_errors=True)

    def _reexec(self, _signum: int, _frame: FrameType | None) -> None:
        """What the arbiter imported changed: stop the workers gracefully and become a fresh
        gunicorn, same pid, same listening sockets (connections wait in their backlog)."""
        if os.getpid() != self.pid:
            return  # a worker that has not installed its own handler yet
        arbiter = self.server
        logger.info("re-executing the arbiter %d for code it imported", self.pid)
        arbiter.kill_workers(signal.SIGTERM)
        self.stop()
        stop_control = getattr(arbiter, "_stop_control_server", None)
        if callable(stop_control):
            stop_control()
        environ = dict(os.environ)
        environ.pop(ENV, None)
        # gunicorn's own re-exec protocol (USR2): take over these sockets, then find the
        # "old master" (ourselves) gone and promote itself.
        environ["GUNICORN_PID"] = str(self.pid)
        environ["GUNICORN_FD"] = ",".join(str(s.fileno()) for s in arbiter.LISTENERS)
        for listener in arbiter.LISTENERS:
            os.set_inheritable(listener.fileno(), True)
        os.chdir(arbiter.START_CTX["cwd"])
        # The command line as typed: gunicorn's own record of it turns `python -m gunicorn`
        # into a run of gunicorn/__main__.py, which puts gunicorn's package dir on sys.path.
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], environ)
