"""Importing, in the arbiter, the third-party modules its workers imported, so each new worker
is forked with them done and imports only the project's own code.

The arbiter must stay clean: what it holds, every worker inherits. A module is fit to keep
when it imports without error, without project code (Django settings, say), and without
starting a thread or opening a file descriptor. Which ones are is found in forked processes
first (see `probe.py`): nothing unfit is ever imported here, so nothing has to be taken back
out. Refused modules are left to the workers, and not tried again.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Iterable
from pathlib import Path
from types import FrameType

from ..watching.sources import is_third_party, module_file
from .footprint import Footprint
from .probe import PROBE_SECONDS, Probe, Raised, Refusal

__all__ = ["Preloader"]

logger = logging.getLogger("reloader")


def _third_party(path: Path | None) -> bool:
    if path is None:
        return True  # built-in or frozen: nothing of the project's
    return is_third_party(path)


def _settings_configured() -> bool:
    conf = sys.modules.get("django.conf")
    return bool(conf is not None and conf.settings.configured)


class Preloader:
    """Remembers what was imported and what was refused, across calls. A probe's file is
    written in `workdir`."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.refused: set[str] = set()
        self.spoilt: str | None = None
        """Set when an import the probe found clean failed here after all: this process holds
        a half-done import now, and only a new one (a re-exec, a new tier) is clean."""
        self.probe: Probe | None = None
        self.asked: list[str] = []
        """The names the running probe judges."""
        self.later: dict[str, None] = {}
        """Names asked for while a probe ran: the next probe's."""

    def preload(self, names: Iterable[str]) -> int:
        """Import the modules named (in order) that are not imported yet and import cleanly,
        waiting for the probe; the count imported."""
        self.start(names)
        return self.take(PROBE_SECONDS)

    def start(self, names: Iterable[str]) -> None:
        """Probe the modules named that are not imported nor refused yet, in the background
        (see `take`); while a probe runs, they wait for the next. Nothing once `spoilt`."""
        if self.spoilt is not None:
            return
        if self.probe is not None:
            self.later.update(dict.fromkeys(names))
            return
        todo = [n for n in dict.fromkeys(names) if n not in sys.modules and n not in self.refused]
        if not todo:
            return
        try:
            self.probe = Probe.start(todo, _problem, self.workdir)
        except OSError as exc:  # the run directory removed meanwhile: the next warm-up tries
            logger.warning("could not start probing what to preload: %s", exc)
            return
        self.asked = todo

    def take(self, wait: float = 0.0) -> int:
        """Once the probe ended (waiting up to `wait` seconds for it), import what it found
        clean, in its order; the count imported. Then the next probe starts, if names were
        asked for meanwhile."""
        probe = self.probe
        if probe is None or not probe.ended(wait):
            return 0
        self.probe = None
        count = 0
        verdicts = probe.verdicts()
        for verdict in verdicts:
            if verdict.problem is not None:
                self.refused.add(verdict.name)
                logger.debug("not preloading %s: %s", verdict.name, verdict.problem)
            elif verdict.name not in sys.modules:
                # The probe's processes have one thread: what it saw of threads and
                # descriptors holds here.
                problem = _problem(verdict.name, footprint_too=False)
                if problem is not None:
                    self.spoilt = f"{verdict.name} {problem.what} here, not in the probe"
                    return count
                count += 1
        # Not judged: the probe was stopped at its deadline, or its sorter ended early.
        self.refused.update(set(self.asked) - {v.name for v in verdicts})
        later, self.later = list(self.later), {}
        self.start(later)
        return count

    @property
    def busy(self) -> bool:
        """Whether a probe runs."""
        return self.probe is not None

    def stop(self) -> None:
        """End the probe that runs, if any."""
        if self.probe is not None:
            self.probe.stop()
            self.probe.verdicts()
            self.probe = None


def _problem(name: str, footprint_too: bool = True) -> Refusal | None:
    """Import `name`: why it must not be kept, or None. Without `footprint_too` a thread or
    descriptor more does not count: in a process with threads of its own (gunicorn's control
    socket is served from one, restarted around every fork) they are not the import's."""
    before = set(sys.modules)
    footprint = Footprint()
    configured = _settings_configured()
    watch = _Importers(sys._getframe())
    sys.meta_path.insert(0, watch)
    try:
        importlib.import_module(name)
    except BaseException as exc:
        modules = _modules_of(_traceback_frames(exc))
        raised = None
        if modules:
            kind = type(exc)
            raised = Raised(modules[-1], kind.__module__, kind.__qualname__, str(exc))
        clean = footprint.grown() is None and _settings_configured() == configured
        what = f"raises {type(exc).__name__}: {exc}"
        return Refusal(what, frozenset(modules), raised, clean)
    finally:
        sys.meta_path.remove(watch)
    added = set(sys.modules) - before
    project = sorted(n for n in added if not _third_party(_file_of(sys.modules.get(n))))
    if project:
        what = f"imports project code ({', '.join(project[:3])})"
        ours = set(project)
        chains = [
            [m for m in chain if m not in ours] for n, chain in watch.seen.items() if n in ours
        ]
        culprits = frozenset(m for chain in chains for m in chain)
        first = next((chain for chain in chains if chain), None)
        raised = None
        if first is not None:
            # The scouts raise an ImportError there: it ends their tries at once.
            raised = Raised(first[-1], "builtins", "ImportError", f"{first[-1]} {what}")
        return Refusal(what, culprits, raised)
    if _settings_configured() and not configured:
        return Refusal("loads the Django settings")
    grown = footprint.grown() if footprint_too else None
    return None if grown is None else Refusal(grown)


class _Importers:
    """A finder that finds nothing: it notes, for each top-level module imported, the modules
    whose top-level code was running (importing it) at the time, outermost first, up to the
    frame `stop`. A project package is imported top-level first: its importers are the
    culprits."""

    def __init__(self, stop: FrameType) -> None:
        self.stop = stop
        self.seen: dict[str, list[str]] = {}

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if "." not in name and name not in self.seen:
            self.seen[name] = _modules_of(_callers(sys._getframe(1), self.stop))


def _callers(frame: FrameType | None, stop: FrameType) -> list[FrameType]:
    """`frame` and its callers up to `stop`, outermost first."""
    frames = []
    while frame is not None and frame is not stop:
        frames.append(frame)
        frame = frame.f_back
    return frames[::-1]


def _traceback_frames(exc: BaseException) -> list[FrameType]:
    """The frames the exception went through, outermost first."""
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    return frames


def _modules_of(frames: Iterable[FrameType]) -> list[str]:
    """The modules whose top-level code runs in `frames`, in their order."""
    return [str(f.f_globals.get("__name__")) for f in frames if f.f_code.co_name == "<module>"]


def _file_of(module: object) -> Path | None:
    from types import ModuleType

    return module_file(module) if isinstance(module, ModuleType) else None
