"""Which changed paths never count, whatever the plan says."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from pathlib import Path

__all__ = ["ChangeFilter"]


class ChangeFilter:
    """Drops paths that are never worth a restart: compiled files, editor leftovers, logs, and
    whatever the user's ignore globs match."""

    ignore_dirs: tuple[str, ...] = ("__pycache__", ".git", ".hg", ".svn", ".mypy_cache")
    """A path with one of these directory names among its parts is ignored."""
    ignore_names: tuple[str, ...] = (
        "*.py[cod]",  # compiled modules, rewritten by the import system itself
        ".*.sw?",  # vim swap files
        "*~",  # backup files of vim and emacs
        ".#*",  # emacs lock files
        "#*#",  # emacs auto-save files
        "4913",  # vim's probe that the directory is writable
        "*.tmp",
        ".DS_Store",
        "*.log",
        "*.sqlite3-journal",
        "*.sqlite3-wal",
        "*.sqlite3-shm",
    )
    """File-name globs that are ignored."""

    def __init__(self, user_globs: Iterable[str] = (), cwd: Path | None = None) -> None:
        self.user_globs = tuple(user_globs)
        self.cwd = cwd or Path.cwd()
        # One regular expression for all name globs: this runs for every file of a plan.
        self._ignored_name = re.compile("|".join(fnmatch.translate(g) for g in self.ignore_names))
        self._ignored_dirs = frozenset(self.ignore_dirs)

    def __call__(self, path: Path) -> bool:
        """True when a change of `path` may count."""
        if not self._ignored_dirs.isdisjoint(path.parts[:-1]):
            return False
        if self._ignored_name.match(path.name):
            return False
        return not self.user_globs or not self._ignored_by_user(path)

    def _ignored_by_user(self, path: Path) -> bool:
        forms = [path.name, str(path)]
        if self.cwd in path.parents:
            forms.append(str(path.relative_to(self.cwd)))
        return any(fnmatch.fnmatch(form, glob) for glob in self.user_globs for form in forms)
