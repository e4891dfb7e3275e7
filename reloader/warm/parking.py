"""Where a spare Django tier parks: a fork of the arbiter that sets Django up as far as it
can before the project's own code, then waits until a change makes the arbiter replace the
tier, and goes on from there (see `spare.py` for the arbiter's side).

`django.setup()` reads the settings and imports every app's package and `AppConfig` (phase
one), then each app's models in the order of `INSTALLED_APPS`, then runs the `ready()`s. A
project lists its own apps first, so its models come before Wagtail's or the admin's, and
an edit of them would throw away everything after. So the spare runs setup under an import
gate: once the app configs are imported, the first import of a project module stops it;
there it first imports the models of the installed (third-party) apps, which Django would
import in this very state a moment later, in another order of `INSTALLED_APPS`; then it
parks. A models edit, or one of a module that a `ready()` imports, then costs only the
project's models and the `ready()`s. What the spare read before it parked (settings, app
configs, the files the settings opened, the third-party models) is sent to the arbiter,
which uses the spare only if none of it changed since the spare started.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from ..watching.sources import is_third_party
from .forks import Channel

__all__ = ["Gate", "SpareUnfit"]


class SpareUnfit(Exception):
    """A third-party app's models failed to import ahead of the project's: this project's
    setup cannot be split, and its tiers are set up from the start."""


class Gate:
    """A finder first on `sys.meta_path` that finds nothing: it parks the process at the
    first import of a project module once Django's app configs are imported, and is done
    once the arbiter said go (or at `park()`, if setup never reached such an import)."""

    def __init__(self, channel: Channel, held: Callable[[], list[str]]) -> None:
        self.channel = channel
        self.held = held
        """The files this process read so far, for the arbiter's look (see `held_report`)."""
        self.parked = False
        self.go: dict[str, Any] = {}
        """The arbiter's go message: `started_ns`, `modules`."""

    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> None:
        if self.parked or not _apps_ready() or not _project_module(name, path, self):
            return
        self.park()

    def park(self) -> None:
        """Import the installed apps' models, tell the arbiter what was read, wait for go."""
        if self.parked:
            return
        self.parked = True
        _import_third_party_models()
        self.channel.send({"parked": self.held()})
        try:
            message, _ = self.channel.receive()
        except EOFError:
            os._exit(0)  # dropped unused: nothing of it is anyone else's
        if not isinstance(message, dict) or "go" not in message:
            raise SpareUnfit(f"the arbiter said {message!r}, not go")
        self.go = message["go"]


def _apps_ready() -> bool:
    apps = sys.modules.get("django.apps")
    return bool(getattr(getattr(apps, "apps", None), "apps_ready", False))


def _project_module(name: str, path: Sequence[str] | None, gate: Gate) -> bool:
    """Whether `name` would be loaded from a file of the project (not the standard library
    or installed packages), as the finders after `gate` find it."""
    for finder in sys.meta_path:
        find_spec = getattr(finder, "find_spec", None)
        if finder is gate or find_spec is None:
            continue
        spec = find_spec(name, path, None)
        if spec is not None:
            origin = spec.origin
            return bool(origin) and os.path.isabs(origin) and not is_third_party(Path(origin))
    return False


def _import_third_party_models() -> None:
    from django.apps import apps

    for config in apps.get_app_configs():
        if config.path and is_third_party(Path(config.path)):
            name = f"{config.name}.models"
            try:
                if importlib.util.find_spec(name) is not None:
                    importlib.import_module(name)
            except Exception as exc:
                raise SpareUnfit(f"{name} raises {type(exc).__name__}: {exc}") from exc
