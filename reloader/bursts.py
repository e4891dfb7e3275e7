"""Bursts of saves: a formatter run over the project, a `git rebase`, many saves within a second.

A process restarts at the first change it sees; it cannot know whether more will follow, and
waiting to find out would slow every single save. Its replacement can know more: whoever
restarts a process for a change records it (when, which files, the directories of the
project's modules) in the directory the server's processes share, and a process about to
load code looks at those directories, the changed files' first (a formatter walks from one
package to the next). Something saved there after the change its predecessor restarted for,
or a restart for a change that came soon after the one before, means the burst is going on:
it waits until the files have been quiet for `QUIET_NS`, and imports the final tree once,
instead of a half-written one that it would have to restart for again. A single save leaves
nothing newer behind it: no wait. And no wait lasts longer than `MAX_WAIT_S`, so a burst that
never ends does not keep the server from serving.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from .rendezvous import replace_file
from .watching.plan import change_ns

__all__ = [
    "MAX_WAIT_S",
    "QUIET_NS",
    "RECORD",
    "BurstWatch",
    "Restart",
    "last_restart",
    "record_restart",
]

logger = logging.getLogger("reloader")

RECORD = "last-restart"
"""Its name in the directory the processes share (not `*.json`: in warm mode's run directory
that would pass for a worker's report)."""
QUIET_NS = 300_000_000
"""A burst is over once its files have not changed for this long: longer than the gaps
between the saves of a tool or a script, shorter than a person's between two saves."""
GAP_NS = 1_000_000_000
"""Two restarts for changes less than this apart are parts of one burst."""
SAME_SAVE_NS = 50_000_000
"""Changes less than this apart are one save (an editor's, a 'save all'), however the
watchers of several processes cut it into batches."""
MAX_WAIT_S = 2.0
"""The longest a process waits for a burst to settle before it loads anyway."""
MAX_DIRECTORIES = 100
"""Directories looked at, at most: those of a restart's files first (the burst is likely
there), then the project's others. Each look lists them and stats their modules."""


@dataclass(frozen=True)
class Restart:
    """What a restart was for, as its record says."""

    changed_ns: int
    """The newest change among the files the restart was for."""
    previous_ns: int
    """The same for the restart before, when it was for another save; 0 if none."""
    paths: tuple[str, ...]
    directories: tuple[str, ...] = ()
    """The other directories of the project's modules, where the burst may go on."""


def last_restart(directory: Path) -> Restart | None:
    """The record of the last restart in `directory`; None if there is none (or it is damaged)."""
    try:
        data = json.loads((directory / RECORD).read_text(encoding="utf-8"))
        return Restart(
            int(data["changed_ns"]),
            int(data["previous_ns"]),
            tuple(data["paths"]),
            tuple(data.get("directories", ())),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def record_restart(
    directory: Path, paths: Collection[Path], project: Collection[Path] = ()
) -> None:
    """Note, for the processes that replace this one (or the workers the supervisor stops),
    that they restart for `paths`; `project`: the directories of the project's own modules
    they watched. Every worker records the same save: once."""
    changed = max((change_ns(p) for p in paths), default=0) or time.time_ns()
    names = {str(p) for p in paths}
    directories = {str(d) for d in project}
    old = last_restart(directory)
    if old is not None and abs(changed - old.changed_ns) < SAME_SAVE_NS:
        changed, previous = max(changed, old.changed_ns), old.previous_ns
        names |= set(old.paths)
        directories |= set(old.directories)
    else:
        previous = old.changed_ns if old is not None else 0
    record = {
        "changed_ns": changed,
        "previous_ns": previous,
        "paths": sorted(names),
        "directories": sorted(directories),
    }
    try:
        replace_file(directory / RECORD, json.dumps(record))
    except OSError as exc:
        logger.debug("cannot record the restart in %s: %s", directory, exc)


class BurstWatch:
    """Decides, for a process about to load code, whether a burst of saves is going on, and
    waits for it to settle. Made from the last restart's record; `None` from `load()` when
    there is none recent enough to matter (a server's first workers)."""

    def __init__(
        self, restart: Restart, accept: Callable[[Path], bool], max_wait: float = MAX_WAIT_S
    ) -> None:
        self.restart = restart
        self.accept = accept
        self.files = {Path(p) for p in restart.paths}
        first = sorted({f.parent for f in self.files})
        others = sorted({Path(d) for d in restart.directories} - set(first))
        self.directories = (first + others)[:MAX_DIRECTORIES]
        self.deadline = time.monotonic() + max_wait
        """No wait goes past this (`time.monotonic()`): `max_wait` seconds from now."""
        self.waited = 0.0
        """Seconds waited so far."""

    @classmethod
    def load(
        cls, directory: Path | None, accept: Callable[[Path], bool], max_wait: float = MAX_WAIT_S
    ) -> BurstWatch | None:
        restart = last_restart(directory) if directory is not None else None
        if restart is None or time.time_ns() - restart.changed_ns > GAP_NS + QUIET_NS:
            return None
        return cls(restart, accept, max_wait)

    def newest(self) -> int:
        """When the restart's files, or a module beside them or elsewhere in the project,
        last changed."""
        newest = max((change_ns(f) for f in self.files if self.accept(f)), default=0)
        for directory in self.directories:
            with contextlib.suppress(OSError), os.scandir(directory) as entries:
                for entry in entries:
                    if not entry.name.endswith(".py"):
                        continue
                    with contextlib.suppress(OSError):
                        info = entry.stat()
                        changed = max(info.st_mtime_ns, info.st_ctime_ns)
                        if changed > newest and self.accept(Path(entry.path)):
                            newest = changed
        return newest

    def going_on(self, newest: int, now: int) -> bool:
        """A save after the one the restart was for, or a restart soon after the one before:
        and the last of it recent."""
        restart = self.restart
        if now - newest >= QUIET_NS:
            return False
        later = newest >= restart.changed_ns + SAME_SAVE_NS
        close = SAME_SAVE_NS <= restart.changed_ns - restart.previous_ns < GAP_NS
        return later or close

    def settle(self) -> None:
        """Wait while a burst is going on, until its files are quiet or `deadline`."""
        newest = self.newest()
        if not self.going_on(newest, time.time_ns()):
            return
        began = time.monotonic()
        while time.monotonic() < self.deadline:
            quiet_ns = time.time_ns() - newest
            if quiet_ns >= QUIET_NS:
                break
            time.sleep(min((QUIET_NS - quiet_ns) / 1e9, self.deadline - time.monotonic()))
            newest = self.newest()
        self.waited += time.monotonic() - began
