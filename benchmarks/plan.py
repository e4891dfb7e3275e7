"""Which servers to start, and what to measure on each, without starting any twice.

A cell is one server start: (tool, project, workers). The main table, the overhead table, the
models-edit table and the scale study ask for overlapping cells (reloader + gunicorn on the
demo with 2 workers is in all four); merging their requests keeps one run as short as it can be.
The real-project section has projects of its own: the Wagtail site and the demo whose
`ready()` imports its views.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import MAIN_TOOLS, MODELS_TOOLS, SCALE_TOOLS, Settings
from .servers import OVERHEAD, TOOLS

IDLE, LATENCY, LOST, THROUGHPUT = "idle", "latency", "lost", "throughput"
MODELS = "models"  # latency after saves of pages/models.py instead of pages/version.py
BROWSER = "browser"  # save -> repainted in a browser tab, on the demo with django-browser-reload
LIVE = "live"  # the project the browser section runs on: a copy of the demo with the companions
REAL = "real"  # each kind of edit the project declares (`Project.edits`), in turn
BUSY = "busy"  # latency with a slow request in flight at each save (`benchmarks.busy`)
WAGTAIL = "wagtail"  # the site `wagtail start` makes (wagtail_site.py)
DEMO_READY = "demo-ready"  # the demo whose ready() imports a signals module importing the views
REAL_PROJECTS = (WAGTAIL, DEMO_READY)
# The sections of the results, as `--only` names them.
SECTIONS = ("main", "models", "overhead", "scale", BROWSER, REAL)


@dataclass(frozen=True, order=True)
class Cell:
    project_order: int
    project: str
    workers: int
    tool: str

    @property
    def slug(self) -> str:
        return f"{self.tool}-{self.project}-w{self.workers}"


def build(
    settings: Settings, only: set[str] | None = None, sections: set[str] | None = None
) -> dict[Cell, set[str]]:
    """Cells in run order (by project, so each project is used in one stretch).

    `only`: tool names; `sections`: which of SECTIONS to measure (None: all)."""
    order = {name: i for i, name in enumerate([*settings.projects, *REAL_PROJECTS, LIVE])}
    wanted = set(SECTIONS) if sections is None else sections
    plan: dict[Cell, set[str]] = {}

    def want(tool: str, project: str, workers: int, *measures: str) -> None:
        if only is not None and tool not in only:
            return
        cell = Cell(order[project], project, workers, tool)
        plan.setdefault(cell, set()).update(measures)

    def with_baseline(tool: str, project: str, workers: int, *measures: str) -> None:
        want(tool, project, workers, *measures)
        want(TOOLS[tool].baseline, project, workers, IDLE)

    w = settings.workers
    if "main" in wanted:
        for tool in MAIN_TOOLS:
            with_baseline(tool, "demo", w, LATENCY, LOST, IDLE)
            if settings.idle_large_all or tool in SCALE_TOOLS:
                with_baseline(tool, settings.large, w, IDLE)
    if "models" in wanted:
        for tool in MODELS_TOOLS:
            want(tool, "demo", w, MODELS)
    if "overhead" in wanted:
        for variants in OVERHEAD.values():
            for tool in variants.values():
                want(tool, "demo", w, THROUGHPUT)
    if "scale" in wanted:
        for tool in SCALE_TOOLS:
            for workers in settings.scale_workers:
                with_baseline(tool, "demo", workers, LATENCY, IDLE)
            for project in settings.scale_projects:
                with_baseline(tool, project, w, LATENCY, IDLE)
    if BROWSER in wanted:
        for tool in settings.browser_tools:
            want(tool, LIVE, w, BROWSER)
    if REAL in wanted:
        for tool in settings.real_tools:
            for project in REAL_PROJECTS:
                want(tool, project, w, REAL)
    return dict(sorted(plan.items()))
