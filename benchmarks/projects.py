"""The projects of a run, each made once, when its first cell needs it: copies of the demo
(plain, with generated modules, with the browser companions, with a `ready()` that imports
the views) and the Wagtail site. One that cannot be made is remembered as such, so its
other cells are skipped or failed at once."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from . import wagtail_site
from .config import Settings
from .live_reload import LIVE_SETTINGS, make_live
from .plan import DEMO_READY, LIVE, WAGTAIL
from .project import READY_EDITS, READY_FILES, Project, make_project
from .session import Host


class Projects:
    """The projects of a run, each made once, when its first cell needs it."""

    def __init__(self, settings: Settings, host: Host, progress: Callable[[str], None]) -> None:
        self.settings = settings
        self.host = host
        self.progress = progress
        self.made: dict[str, Project] = {}
        self.broken: dict[str, tuple[str, str]] = {}  # name -> (status, reason)
        self.wagtail = wagtail_site.Generation(host.workdir, WAGTAIL, host.wagtail_site)

    def start_early(self, names: set[str]) -> None:
        if WAGTAIL in names and self.settings.generate_early and not wagtail_site.missing():
            self.progress(f"project {WAGTAIL}: wagtail start, then migrate, beside the first cells")
            self.wagtail.start()

    def get(self, name: str) -> Project:
        """The project, made now if need be; raises `Unmade` when it cannot be."""
        if name in self.broken:
            raise Unmade(*self.broken[name])
        if name not in self.made:
            try:
                self.made[name] = self._make(name)
            except Unmade as error:
                self.broken[name] = (error.status, error.reason)
                raise
            except Exception as error:
                self.broken[name] = ("failed", f"making the project failed: {error!r}")
                raise Unmade(*self.broken[name]) from error
            self.progress(
                f"project {name}: {self.made[name].modules_loaded} module files loaded by a worker"
            )
        return self.made[name]

    def _make(self, name: str) -> Project:
        per_dir = self.settings.projects["demo"].per_dir
        workdir = self.host.workdir
        if name == LIVE:
            self.progress(f"project {LIVE}: copying the demo, with django-browser-reload")
            demo = make_project(workdir, LIVE, 0, per_dir)
            make_live(demo.root)
            return dataclasses.replace(demo, settings=LIVE_SETTINGS)
        if name == DEMO_READY:
            self.progress(f"project {name}: the demo, its ready() importing the views")
            demo = make_project(workdir, name, 0, per_dir, files=READY_FILES)
            return dataclasses.replace(demo, edits=READY_EDITS)
        if name == WAGTAIL:
            missing = wagtail_site.missing()
            if missing:
                raise Unmade("skipped", missing)
            self.progress(f"project {name}: the site wagtail start makes, migrated")
            return self.wagtail.project()
        size = self.settings.projects[name]
        self.progress(f"project {name}: copying the demo, {size.modules} generated modules")
        return make_project(workdir, name, size.modules, size.per_dir)

    def stop(self) -> None:
        self.wagtail.stop()


class Unmade(Exception):
    """Why a project cannot be made: `status` is "skipped" (a package missing here) or
    "failed"."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
