"""Django's autoreload signals, sent from each process as runserver sends them.

Receivers of `autoreload_started` get a sender with `watch_dir(path, glob)` and
`extra_files`, exactly the part of Django's reloader they use; `file_changed` is sent for
every change, and a change some receiver handles (it returns a true value, as Django's own
template and translation receivers do) needs no restart.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable, Iterator, MutableSet
from pathlib import Path
from typing import Any

from ..log import describe_paths
from ..watching import Pattern, Sources
from ..watching.plan import split_glob
from .stream_flags import forget_unheard_flags, hurry_heard_flags

__all__ = ["DjangoBridge", "django_ready", "load_urlconf"]

logger = logging.getLogger("reloader")


def django_ready() -> bool:
    """Whether this process has a configured Django whose apps are loaded."""
    if "django.apps" not in sys.modules:
        return False
    from django.apps import apps

    return bool(apps.ready)


def load_urlconf() -> None:
    """Import the project's URLconf, and with it the views, now rather than on the first
    request, as runserver's system checks do. A broken views module then fails the load and
    gets our error page; on a request, Django's own debug page fails on it too (it resolves
    the URL again) and the client sees a bare 500."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018  (the property imports the modules)


class _ExtraFiles(MutableSet[Path]):
    """`sender.extra_files`: Django code adds to it; each file added is watched."""

    def __init__(self, sources: Sources) -> None:
        self._sources = sources
        self._files: set[Path] = set()

    def __contains__(self, item: object) -> bool:
        return item in self._files

    def __iter__(self) -> Iterator[Path]:
        return iter(self._files)

    def __len__(self) -> int:
        return len(self._files)

    def add(self, value: Path) -> None:
        self._files.add(Path(value))
        self._sources.add_files([Path(value)])

    def discard(self, value: Path) -> None:
        self._files.discard(Path(value))


class DjangoBridge:
    """The `sender` of Django's autoreload signals in this process."""

    def __init__(self, sources: Sources, streams_open: Callable[[], bool]) -> None:
        self._sources = sources
        self._streams_open = streams_open
        """Whether this process streams a response now: then a stream hears its flags."""
        self.extra_files: MutableSet[Path] = _ExtraFiles(sources)
        self.patterns: set[Pattern] = set()
        """What Django apps asked to watch; their changes go to `file_changed` first."""
        self._offered: dict[Path, tuple[int, int, int]] = {}
        """Each file handled without a restart, with the (inode, size, mtime) it had then: a
        save reported twice (in two batches, or by the watcher and a refresh request) is
        offered once."""

    def watch_dir(self, path: Path | str, glob: str) -> None:
        """Watch files matching `glob` under `path` (which may not exist yet)."""
        directory = Path(path).absolute()
        self.patterns.add(split_glob(directory, glob))
        self._sources.add_pattern(directory, glob)

    def start(self) -> None:
        """Send `autoreload_started`, after making sure Django's own receivers are connected
        (they connect on first use of templates and translations)."""
        import django.template  # noqa: F401  (connects the template receivers)
        from django.utils import autoreload, translation

        translation.get_language()  # connects the translation receivers when USE_I18N
        autoreload.autoreload_started.send(sender=self)

    def declared(self, path: Path) -> bool:
        """Whether `path` is in a directory a Django app asked to watch."""
        return any(p.matches(path) for p in self.patterns)

    def refresh(self, paths: set[Path]) -> set[Path]:
        """Offer each changed file to `file_changed`, once per save; return the paths that need
        no restart: those a receiver handled, and those in a declared directory that are gone
        (an editor's temporary file, renamed over the one the user saved)."""
        settled = set()
        refreshed = set()
        for path in paths:
            try:
                stat = path.stat()
            except OSError:
                if self.declared(path):
                    settled.add(path)
                continue
            signature = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
            if self._offered.get(path) == signature:
                settled.add(path)
            elif self._handled(path):
                self._offered[path] = signature
                settled.add(path)
                refreshed.add(path)
        if refreshed:
            logger.info("refreshed without a restart: %s", describe_paths(refreshed))
            if self._streams_open():
                hurry_heard_flags()
            else:
                forget_unheard_flags()
        return settled

    def _handled(self, path: Path) -> bool:
        """Send `file_changed` for `path`; True when a receiver took care of it."""
        from django.utils.autoreload import file_changed

        try:
            results: Iterable[tuple[Any, Any]] = file_changed.send(sender=self, file_path=path)
        except Exception:
            logger.exception("a file_changed receiver failed for %s; restarting instead", path)
            return False
        return any(result for _receiver, result in results)
