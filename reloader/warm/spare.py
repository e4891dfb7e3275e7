"""The spare Django tier, as the arbiter keeps it: once a tier has served a while, a second
fork of the arbiter sets Django up as far as it can without the project's code and parks
there (see `parking.py`). When an edit of the models, or of a module a `ready()` imports,
replaces the tier, the spare goes on from where it parked instead of a new fork starting from
the settings: on the Wagtail site that skips the settings, the app configs and Wagtail's own
models. It is used only if nothing it read changed since it started (an edit of the settings
throws it away) and it was made for the same setup; it is killed with the tier otherwise.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..watching.plan import change_ns
from .tier import SETUP_SECONDS, DjangoTier
from .tier_process import TierPlan

__all__ = ["SPARE_AFTER_S", "Spare"]

logger = logging.getLogger("reloader")

SPARE_AFTER_S = 1.0
"""How long a tier must have been ready before its spare is forked: earlier, the spare's
setup would share the CPU with the new workers' first requests."""


class Spare:
    """At most one spare at a time, made at most once per tier."""

    def __init__(self) -> None:
        self.tier: DjangoTier | None = None
        self.made_for = 0
        """The pid of the tier the last spare was made beside."""
        self.enabled = True

    def keep(
        self, server: Any, tier: DjangoTier | None, plan: Callable[[], TierPlan | None]
    ) -> None:
        """From gunicorn's main loop: learn how the spare does; fork one beside `tier` once it
        has been ready a while, for `plan()` (the tier's setup, as the workers now report it:
        asked only then, since it reads their reports)."""
        spare = self.tier
        if spare is not None:
            spare.parked(0)
            if spare.problem is not None:
                self.drop()
                if not _changed(spare.plan.report.files, spare.started_ns):
                    # Set up from the same files as the tier, which worked: the split is at fault.
                    self.enabled = False
                    logger.warning(
                        "the spare Django tier failed (%s): replacing the tier sets Django "
                        "up from the start, for this server's life",
                        spare.problem.what,
                    )
            elif spare.ended or spare.exited():
                self.drop()
            return
        if not self.enabled or tier is None or not tier.ready or self.made_for == tier.pid:
            return
        if time.monotonic() - tier.ready_at < SPARE_AFTER_S:
            return
        self.made_for = tier.pid
        planned = plan()
        if planned is not None and planned.report.django_settings == tier.settings_module:
            self.tier = DjangoTier.start(server, replace(planned, spare=True))

    def take(self, server: Any, plan: TierPlan) -> DjangoTier | None:
        """The spare, told to go on as the tier for `plan`, if it may: made for the same
        setup and configuration, parked (waited for, if it is still on its way: it is ahead
        of a new fork), and nothing it read changed since it started. Else None."""
        spare, self.tier = self.tier, None
        if spare is None:
            return None
        started_ns = time.time_ns()  # before the look: a change after it is the tier's
        held = None
        if spare.cfg is server.cfg and _same_setup(spare.plan, plan):
            held = spare.parked(SETUP_SECONDS)
        if held is None or _changed(held, spare.started_ns):
            spare.stop()
            return None
        spare.go(started_ns, plan.modules)
        return spare

    def drop(self) -> None:
        spare, self.tier = self.tier, None
        if spare is not None:
            spare.stop()

    def close_channel(self) -> None:
        """In a child forked from the arbiter: the spare's channel is the arbiter's alone (a
        copy held elsewhere would keep the spare from seeing the arbiter let it go)."""
        if self.tier is not None:
            with contextlib.suppress(OSError):
                self.tier.channel.close()


def _same_setup(one: TierPlan, other: TierPlan) -> bool:
    a, b = one.report, other.report
    return (
        a.django_settings == b.django_settings
        and a.sys_path == b.sys_path
        and a.environ == b.environ
        and one.environ == other.environ
        and one.extra_files == other.extra_files
        and one.run.path == other.run.path
    )


def _changed(files: list[str], since_ns: int) -> bool:
    """Whether one of `files` changed after `since_ns`, or is gone."""
    return any((changed := change_ns(Path(f))) == 0 or changed > since_ns for f in files)
