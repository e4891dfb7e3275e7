"""Telling, in forked processes, which modules import cleanly here, before this process imports
any: so it imports only those, and never takes a failed import back out of `sys.modules`.

Such a rollback is not sound. A module kept from before can hold what the dropped ones made:
pydantic's package caches the attributes it imports lazily (`pydantic.BaseModel`), so after
django-ninja failed half-way (its `conf` needs Django's settings), `BaseModel` came from a
dropped copy of pydantic's internals and the next import of ninja made a second
`ModelMetaclass`: a metaclass conflict in `ninja.Schema`, in every process forked since.

Two kinds of process do the trying. The sorter, forked from this one, keeps a state this
process can reach: it imports only what was found clean. For the trying it forks a scout,
which imports the names one after another and says how each went. A refusal that soiled the
scout (it imported project code, loaded the settings, started a thread) ends it, and the
sorter forks a new one from its own clean state for the names after; one that only raised
leaves the scout as it was but for the modules the import completed, which it tries next,
so the sorter imports them too and both hold the same again. A refusal names the modules
that were being imported when it happened: a later name at or under one of them fails the
same way, and is refused untried; a later import that reaches the module that raised
raises again at once in the scouts. This process imports each name the sorter confirmed,
as the sorter did, in the same order from the same state.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import select
import signal
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from .forks import (
    Channel,
    die_with_parent,
    fork_frozen,
    leave_signals_to_the_arbiter,
    set_process_name,
)

__all__ = ["NAME", "PROBE_SECONDS", "Probe", "Raised", "Refusal", "Verdict"]

PROBE_SECONDS = 120.0
"""How long a whole probe may take: the names not judged by then are refused."""

NAME = b"reloader-probe"
"""The probe's process name (`ps -o comm`), its scouts' too; the command line is the
server's."""

IMPORT_SECONDS = 10.0
"""How long one import may take in a scout: past it, it is refused (waiting on the network)."""


@dataclass(frozen=True)
class Refusal:
    """Why a module must not be kept."""

    what: str
    """A phrase: 'imports project code (mysite.settings)'."""
    culprits: frozenset[str] = field(default_factory=frozenset)
    """The modules being imported when it happened: importing one of them, or a module in
    one of their packages, runs into it again."""
    raised: Raised | None = None
    """The exception, when one ended the import."""
    clean: bool = False
    """The process that tried is as it was, but for the modules the import completed: it
    raised, and loaded no settings, started no thread, opened no descriptor."""


@dataclass(frozen=True)
class Raised:
    """An exception that went off in a module's top-level code, as a scout raises it again at
    once when a later import reaches that module, rather than running the import up to it."""

    module: str
    """Where it went off: the innermost module whose top-level code it went through."""
    type_module: str
    type_name: str
    message: str

    def exception(self) -> BaseException | None:
        """A new one of the same type, or None when that type cannot be made from a message."""
        with contextlib.suppress(Exception):
            kind = getattr(importlib.import_module(self.type_module), self.type_name)
            if isinstance(kind, type) and issubclass(kind, Exception):
                return kind(self.message)
        return None


class _Reraiser:
    """A finder for scouts: the modules known to raise, raise at once."""

    def __init__(self, raised: dict[str, Raised]) -> None:
        self.raised = raised

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        known = self.raised.get(name)
        exception = known.exception() if known is not None else None
        if exception is not None:
            raise exception


Check = Callable[[str], "Refusal | None"]
"""Import the module named; a `Refusal`, or None when it is fit to keep."""


@dataclass(frozen=True)
class Verdict:
    """One name judged: `problem` is None when it imports cleanly after those judged before."""

    name: str
    problem: str | None


class Probe:
    """One probe under way. `start` forks its sorter, which writes each verdict to a file as
    soon as it imported the name (or refused it); once `ended`, `verdicts` reads them. While
    it runs this process holds nothing of it but a pid and a path: a worker forked meanwhile
    inherits nothing."""

    def __init__(self, pid: int, path: Path, deadline: float) -> None:
        self.pid = pid
        self.path = path
        self.deadline = deadline
        self.reaped = False

    @classmethod
    def start(
        cls, names: Sequence[str], check: Check, workdir: Path, seconds: float = PROBE_SECONDS
    ) -> Probe:
        """Judge `names` with `check`, within `seconds` (then the sorter is stopped)."""
        fd, name = tempfile.mkstemp(prefix="probe-", suffix=".verdicts", dir=workdir)
        os.close(fd)
        pid = fork_frozen()
        if pid == 0:
            _sorter(list(names), check, Path(name))
        return cls(pid, Path(name), time.monotonic() + seconds)

    def ended(self, wait: float = 0.0) -> bool:
        """Whether the sorter is done and reaped, waiting up to `wait` seconds for it; past
        the deadline it is stopped, and has ended."""
        until = min(self.deadline, time.monotonic() + wait)
        while not self._reap():
            if time.monotonic() >= self.deadline:
                self.stop()
                return True
            left = until - time.monotonic()
            if left <= 0:
                return False
            _await_exit(self.pid, left)
        return True

    def verdicts(self) -> list[Verdict]:
        """What the sorter wrote, in its order (a line cut short by a stop left out); the
        file is removed."""
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except OSError:
            lines = []
        with contextlib.suppress(OSError):
            self.path.unlink()
        found = []
        for line in lines:
            with contextlib.suppress(ValueError):
                name, problem = json.loads(line)
                found.append(Verdict(str(name), None if problem is None else str(problem)))
        return found

    def stop(self) -> None:
        """Kill the sorter, if it is still our child (one the server reaped may be another
        process's pid by now), and reap it."""
        if not self._reap():
            _end(self.pid)
            self.reaped = True

    def _reap(self) -> bool:
        if not self.reaped:
            try:
                self.reaped = os.waitpid(self.pid, os.WNOHANG) != (0, 0)
            except ChildProcessError:
                self.reaped = True  # the server's own waitpid(-1) took it
        return self.reaped


def _await_exit(pid: int, seconds: float) -> None:
    """Return when process `pid` ended, or after `seconds`."""
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        time.sleep(min(seconds, 0.01))  # no pidfd (not Linux): look again soon
        return
    try:
        select.select([fd], [], [], seconds)
    finally:
        os.close(fd)


def _end(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _under(name: str, culprits: frozenset[str]) -> str | None:
    """The culprit `name` is, or is in the package of, if any."""
    parts = name.split(".")
    for end in range(1, len(parts) + 1):
        if (prefix := ".".join(parts[:end])) in culprits:
            return prefix
    return None


@dataclass
class _Plan:
    """What a new scout carries on from."""

    left: list[str]
    """The names not judged yet, in the order to try them."""
    culprits: set[str] = field(default_factory=set)
    raised: dict[str, Raised] = field(default_factory=dict)


def _sorter(names: list[str], check: Check, path: Path) -> NoReturn:
    """Write each verdict to `path` once this process agrees: a name a scout found clean it
    imports itself; should that go otherwise here, it says so and ends, its state spoilt."""
    with contextlib.suppress(BaseException), path.open("a", encoding="utf-8") as out:

        def tell(name: str, problem: str | None) -> None:
            out.write(json.dumps([name, problem]) + "\n")
            out.flush()

        set_process_name(NAME)
        leave_signals_to_the_arbiter(signal.SIG_IGN)  # the scouts: reaped by the kernel
        die_with_parent()
        plan = _Plan(names)
        while plan.left:
            told: set[str] = set()
            trying, following = None, None
            for message in _scout(plan, check):
                if "trying" in message:
                    trying = str(message["trying"])
                elif "left" in message:
                    following = _Plan(
                        [str(n) for n in message["left"]],
                        {str(n) for n in message["culprits"]},
                        {str(k): Raised(**v) for k, v in message["raised"].items()},
                    )
                else:
                    name, what = str(message["name"]), message.get("what")
                    if what is None and name not in sys.modules:
                        mine = check(name)
                        if mine is not None:
                            tell(name, f"{mine.what} (in the sorter, not in the scout)")
                            os._exit(0)
                    tell(name, None if what is None else str(what))
                    told.add(name)
            if following is not None:
                plan = following
                continue
            # The scout ended or hung without a plan: over `trying`, unless it judged it.
            if trying is None or trying in told:
                break  # it died of something else: nothing to learn from another
            tell(trying, f"ends or hangs the process that imports it (over {IMPORT_SECONDS} s)")
            plan.culprits.add(trying)
            plan.left = [n for n in plan.left if n not in told and n != trying]
    os._exit(0)


def _scout(plan: _Plan, check: Check) -> Iterator[dict[str, Any]]:
    """Fork a scout that carries on from `plan` (see `_try_all`): its messages, up to its
    last word."""
    ours, theirs = Channel.pair()
    pid = fork_frozen()
    if pid == 0:
        ours.close()
        with contextlib.suppress(BaseException):
            die_with_parent()
            _try_all(plan, check, theirs)
        os._exit(0)
    theirs.close()
    # A scout that ends is reaped by the kernel (SIGCHLD is ignored here), and not waited
    # for: its exit takes a few milliseconds, of each of hundreds of scouts. Only one that
    # hangs is killed (alive, so its pid is still its own).
    try:
        while True:
            try:
                message, _ = ours.receive(IMPORT_SECONDS)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                return
            except (EOFError, OSError, ValueError):
                return
            if not isinstance(message, dict):
                return
            yield message
            if "left" in message:
                return  # its last word
    finally:
        ours.close()


def _try_all(plan: _Plan, check: Check, channel: Channel) -> None:
    """In a scout: judge the names in turn, telling each verdict. A refusal that leaves this
    process clean but for modules on the list has it carry on with those (so the sorter
    imports them too, and its state is this one's again); any other ends it, with the plan
    for the next scout as its last word."""
    sys.meta_path.insert(0, _Reraiser(plan.raised))
    left = deque(plan.left)
    while left:
        name = left.popleft()
        culprit = _under(name, frozenset(plan.culprits))
        if culprit is not None:
            channel.send({"name": name, "what": f"needs {culprit}, refused"})
            continue
        if name in sys.modules:
            channel.send({"name": name})
            continue
        channel.send({"trying": name})
        before = set(sys.modules)
        refusal = check(name)
        if refusal is None:
            channel.send({"name": name})
            continue
        channel.send({"name": name, "what": refusal.what})
        plan.culprits |= refusal.culprits | {name}
        culprits = frozenset(plan.culprits)
        if refusal.raised is not None:
            plan.raised[refusal.raised.module] = refusal.raised
        # What the refused import completed: tried first, as what later names need too.
        completed = [n for n in sys.modules if n not in before]
        rest = [n for n in left if n not in completed]
        left = deque([*(n for n in completed if n in left), *rest])
        # Carry on only if the sorter will import each module completed here, as it does
        # what this process found clean: then both hold the same.
        taken = len(left) == len(completed) + len(rest)
        if not (refusal.clean and taken and not any(_under(n, culprits) for n in completed)):
            channel.send(
                {
                    "left": list(left),
                    "culprits": sorted(plan.culprits),
                    "raised": {k: vars(v) for k, v in plan.raised.items()},
                }
            )
            return
