"""The Django tier, as the arbiter sees it: a child process forked from the arbiter, which
holds Django imported but not set up, that runs `django.setup()` and forks the workers
(`tier_process.py` is its inside). A change to what only the tier holds (settings, models,
admin modules, what `ready()` imports, a `.env` the settings read) replaces the tier by a new
fork of the arbiter: no exec, no new interpreter, Django's own imports kept.

gunicorn's internals this relies on, checked at start by `unfit()`: `Arbiter.spawn_worker`
calls the `pre_fork` hook and then `os.fork()`, the worker object's heartbeat file has a
`fileno()`, and the configuration has `set()`. The arbiter makes each worker as gunicorn
always does; only the fork is done by the tier (the arbiter's `os.fork` is replaced for that
one call, from the `pre_fork` hook).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import time
from typing import Any

from .django_setup import SetupProblem
from .forks import Channel, fork_frozen
from .tier_process import TierPlan, serve_tier

__all__ = ["DjangoTier", "TierGone", "unfit"]

logger = logging.getLogger("reloader")

SETUP_SECONDS = 120.0
"""How long a new tier may take to set Django up and import what the workers use before the
arbiter gives up on it (forking from itself meanwhile is no use: a worker needs the setup)."""

SPAWN_SECONDS = 10.0
"""How long a fork may take, setup done."""

MIN_GUNICORN = (24, 1)


class TierGone(Exception):
    """The tier did not do what it was asked: it died, hung or refused."""


def unfit(server: Any) -> str | None:
    """Why this gunicorn cannot have a Django tier, or None."""
    import gunicorn

    version = tuple(getattr(gunicorn, "version_info", (0,)))
    if version < MIN_GUNICORN:
        return f"gunicorn {gunicorn.__version__} is older than 24.1"
    if not sys.platform.startswith("linux"):
        return "it needs Linux (a child subreaper)"
    spawn = getattr(type(server), "spawn_worker", None)
    names = getattr(getattr(spawn, "__code__", None), "co_names", ())
    if not {"pre_fork", "fork"} <= set(names):
        return f"gunicorn {gunicorn.__version__} spawns workers in a way this does not know"
    if not callable(getattr(server.cfg, "set", None)):
        return f"gunicorn {gunicorn.__version__}'s configuration has no set()"
    return None


class DjangoTier:
    """One tier process. Created by `start`; the arbiter must `stop` it."""

    def __init__(
        self, pid: int, channel: Channel, plan: TierPlan, cfg: object, started_ns: int
    ) -> None:
        self.pid = pid
        self.started_ns = started_ns
        """Before it began importing: a change after this may be missing in it."""
        self.channel = channel
        self.plan = plan
        self.cfg = cfg
        """The arbiter's configuration it was forked with: a reload (HUP) makes a new one."""
        self.offered: set[str] = set(plan.modules)
        self.ready = False
        self.ready_at = 0.0
        """When the arbiter learnt it was ready (`time.monotonic()`)."""
        self.held: list[str] | None = None
        """A spare's, once parked: the files it read before (see `parking.py`)."""
        self.problem: SetupProblem | None = None
        self.ended = False
        """Its process died before its setup was over."""
        self.reaped = False

    @property
    def settings_module(self) -> str:
        return self.plan.report.django_settings

    @classmethod
    def start(cls, server: Any, plan: TierPlan) -> DjangoTier:
        ours, theirs = Channel.pair()
        started_ns = time.time_ns()
        pid = fork_frozen()
        if pid == 0:
            ours.close()
            serve_tier(server, theirs, plan)
        theirs.close()
        return cls(pid, ours, plan, server.cfg, started_ns)

    def settled(self, timeout: float) -> bool:
        """Whether setup is over here (`ready`, or a `problem`), waiting up to `timeout`
        seconds for it (0: only look)."""
        if self.ready or self.problem is not None or self.ended or self._hear(timeout):
            return True
        if timeout:
            self.problem = SetupProblem(f"took more than {timeout:.0f} s", raised=False)
        return bool(timeout)

    def _hear(self, timeout: float) -> bool:
        """Take the process's next message, waiting up to `timeout` seconds (0: only look);
        False if none came in time."""
        if timeout == 0 and not self.channel.ready():
            return False
        try:
            message, _ = self.channel.receive(timeout or None)
        except TimeoutError:
            return False
        except (EOFError, OSError, ValueError):
            # Died (a crash, its run directory removed under it): a loss, not a verdict on
            # the project's setup, which a new tier may well pass.
            self.ended = True
            return True
        self._take(message)
        return True

    def _take(self, message: object) -> None:
        if isinstance(message, dict) and "problem" in message:
            self.problem = SetupProblem(str(message["problem"]), bool(message.get("raised")))
        elif isinstance(message, dict) and "parked" in message:
            self.held = [str(f) for f in message["parked"]]
        else:
            self.ready = True
            self.ready_at = time.monotonic()

    def parked(self, timeout: float) -> list[str] | None:
        """A spare's files read before it parked, waiting up to `timeout` seconds for it to
        park (0: only look); None while it has not, or when it failed or died."""
        if self.held is None and self.problem is None and not self.ended:
            self._hear(timeout)
        return self.held

    def go(self, started_ns: int, modules: list[str]) -> None:
        """Have a parked spare set Django up the rest of the way, as a tier that began
        importing at `started_ns` (what it read before did not change since it started)."""
        self.started_ns = started_ns
        self.offered = set(modules)
        self.channel.send({"go": {"started_ns": started_ns, "modules": modules}})

    def spawn(self, worker: Any) -> int:
        """Have the tier fork the worker gunicorn just made here; its pid."""
        if not self.settled(SETUP_SECONDS) or not self.ready:
            raise TierGone(f"its process {self.pid} ended" if self.ended else "its setup failed")
        try:
            self.channel.send({"spawn": worker.age}, [worker.tmp.fileno()])
            message, _ = self.channel.receive(SPAWN_SECONDS)
        except (EOFError, OSError, ValueError) as exc:
            raise TierGone(f"it did not fork ({type(exc).__name__}: {exc})") from None
        if not isinstance(message, dict) or not isinstance(message.get("pid"), int):
            raise TierGone(f"it did not fork: {message}")
        return int(message["pid"])

    def warm(self, names: list[str]) -> None:
        """Offer modules the workers imported since: the tier imports them when it idles."""
        new = [n for n in names if n not in self.offered]
        if not new or not self.ready:
            return
        self.offered.update(new)
        with contextlib.suppress(OSError):
            self.channel.send({"warm": new})

    def exited(self) -> bool:
        """Whether the process ended (and is reaped now)."""
        if not self.reaped:
            try:
                self.reaped = os.waitpid(self.pid, os.WNOHANG) != (0, 0)
            except ChildProcessError:
                self.reaped = True  # gunicorn's waitpid(-1) took it
        return self.reaped

    def stop(self) -> None:
        """End the process and reap it: it holds nothing that needs a graceful end."""
        self.channel.close()
        if self.reaped:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)
        self.reaped = True
