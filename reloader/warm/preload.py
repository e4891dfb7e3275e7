"""Importing, in the arbiter, the third-party modules its workers imported, so each new worker
is forked with them done and imports only the project's own code.

The arbiter must stay clean: what it holds, every worker inherits. So each module is imported
on its own and rolled back (taken out of `sys.modules`) if it fails, imports project code
(Django settings, say), or starts a thread or opens a file descriptor. Such a module is left
to the workers, and not tried again.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Iterable
from pathlib import Path

from ..watching.sources import is_third_party, module_file
from .footprint import Footprint

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
    """Remembers what was imported and what was refused, across calls."""

    def __init__(self) -> None:
        self.refused: set[str] = set()

    def preload(self, names: Iterable[str]) -> int:
        """Import the modules named (in order) that are not imported yet; the count imported."""
        count = 0
        for name in names:
            if name in sys.modules or name in self.refused:
                continue
            if self._try(name):
                count += 1
        return count

    def _try(self, name: str) -> bool:
        before = set(sys.modules)
        footprint = Footprint()
        configured = _settings_configured()
        problem = None
        try:
            importlib.import_module(name)
        except BaseException as exc:
            problem = f"{type(exc).__name__}: {exc}"
        if problem is None:
            added = set(sys.modules) - before
            project = sorted(n for n in added if not _third_party(_file_of(sys.modules.get(n))))
            if project:
                problem = f"imports project code ({', '.join(project[:3])})"
            elif _settings_configured() and not configured:
                problem = "loads the Django settings"
            else:
                problem = footprint.grown()
        if problem is None:
            return True
        self._roll_back(before, configured)
        self.refused.add(name)
        logger.debug("not preloading %s: %s", name, problem)
        return False

    def _roll_back(self, before: set[str], configured: bool) -> None:
        for added in set(sys.modules) - before:
            module = sys.modules.pop(added, None)
            parent, _, child = added.rpartition(".")
            # `import a.b` also set `a.b` as an attribute of `a`: drop the stale one.
            if parent in sys.modules and getattr(sys.modules[parent], child, None) is module:
                delattr(sys.modules[parent], child)
        if not configured and _settings_configured():
            from django.conf import settings
            from django.utils.functional import empty

            settings._wrapped = empty


def _file_of(module: object) -> Path | None:
    from types import ModuleType

    return module_file(module) if isinstance(module, ModuleType) else None
