"""Run a plan: start each cell's server, take its measurements, print a line per measurement.

A tool that cannot run here is recorded as skipped, a server that fails is recorded as failed
with the end of its log; neither stops the run. So is a project that cannot be made (no
wagtail installed, a failed migrate): its cells are skipped or failed, the others run.
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import browser, measure
from .config import Settings
from .plan import BROWSER, BUSY, IDLE, LATENCY, LOST, MODELS, REAL, THROUGHPUT, Cell
from .project import EDIT_MODELS, Project
from .projects import Projects, Unmade
from .servers import TOOLS, unavailable
from .session import Host, Session, StartupError, running

# Idle and memory before any reload disturbs them.
ORDER = (IDLE, THROUGHPUT, LATENCY, MODELS, LOST, BROWSER, REAL, BUSY)


@dataclass
class CellResult:
    cell: Cell
    status: str  # ok | skipped | failed
    reason: str | None = None
    startup_s: float | None = None
    loadavg: float | None = None  # 1-minute load when the cell started: the machine is shared
    results: dict[str, dict[str, Any]] = field(default_factory=dict)


class Progress:
    def __init__(self) -> None:
        self.began = time.monotonic()

    def __call__(self, message: str) -> None:
        print(f"[{time.monotonic() - self.began:6.1f}s] {message}", flush=True)


def _describe(measure_name: str, result: dict[str, Any]) -> str:
    if measure_name == BROWSER and "view" in result:
        kinds = ", ".join(
            f"{kind} median {result[kind]['median_s']} s p90 {result[kind]['p90_s']} s "
            f"({result[kind]['timeouts']}/{result[kind]['saves']} timeouts)"
            for kind in ("view", "template", "view_two_tabs")
        )
        other = result["view_two_tabs"]["other_tab_repainted"]
        return f"{kinds}; other tab repainted {other}; grace {result['grace']}"
    if measure_name == BUSY:
        return (
            f"median {result['median_s']} s, p90 {result['p90_s']} s, {result['timeouts']} "
            f"timeouts; the {result['slow_s']} s requests: {result['slow']}"
        )
    if measure_name in (LATENCY, MODELS):
        stale = result["stale"]
        return (
            f"median {result['median_s']} s, p90 {result['p90_s']} s, all workers "
            f"{result['all_fresh_median_s']} s, {result['timeouts']} timeouts; stale "
            f"{stale['stale']}/{stale['answers_after_fresh']}; steps "
            f"{result['steps_median_s']}"
        )
    if measure_name == REAL:
        return "; ".join(
            f"{kind} median {r['median_s']} s ({r['timeouts']} timeouts, stale "
            f"{r['stale']['stale']}, lost {r['lost']['failed']})"
            for kind, r in result.items()
        )
    if measure_name == LOST:
        return (
            f"{result['failed']}/{result['requests']} failed over {result['reloads']} "
            f"reloads {result['by_kind']}"
        )
    if measure_name == IDLE:
        return f"{result['cpu_s']} CPU s in {result['seconds']} s ({result['processes']} procs)"
    if "rps_median" in result:
        return (
            f"{result['rps_median']} req/s, RSS {result['rss_mib_per_worker']} MiB/worker, "
            f"PSS {result['pss_mib_total']} MiB total"
        )
    return str(result)


def _measure(name: str, session: Session, settings: Settings, edits: int) -> dict[str, Any]:
    if name == IDLE:
        return measure.idle(session, settings)
    if name == THROUGHPUT:
        return measure.throughput(session, settings)
    if name == LATENCY:
        return measure.latency(session, settings, edits)
    if name == MODELS:
        return measure.latency(session, settings, settings.models_edits, EDIT_MODELS)
    if name == BROWSER:
        return browser.measure(session, settings)
    if name == REAL:
        return measure.edits(session, settings)
    if name == BUSY:
        return measure.busy(session, settings, edits, settings.busy_seconds)
    return measure.lost(session, settings)


def run(
    plan: dict[Cell, set[str]],
    settings: Settings,
    host: Host,
    progress: Callable[[str], None],
) -> tuple[list[CellResult], dict[str, Project]]:
    projects = Projects(settings, host, progress)
    projects.start_early({cell.project for cell in plan})
    try:
        results = [
            _run_cell(cell, wanted, settings, host, projects) for cell, wanted in plan.items()
        ]
    finally:
        projects.stop()
    return results, projects.made


def _run_cell(
    cell: Cell, wanted: set[str], settings: Settings, host: Host, projects: Projects
) -> CellResult:
    progress = projects.progress
    tool = TOOLS[cell.tool]
    reason = unavailable(tool, host.apache_problem)
    if reason:
        progress(f"{cell.slug}: skipped: {reason}")
        return CellResult(cell, "skipped", reason)
    try:
        project = projects.get(cell.project)
    except Unmade as error:
        progress(f"{cell.slug}: {error.status}: {error.reason}")
        return CellResult(cell, error.status, error.reason)
    # The main table's saves count: scale-only cells take fewer.
    edits = settings.edits if LOST in wanted else settings.scale_edits
    result = CellResult(cell, "ok", loadavg=round(os.getloadavg()[0], 2))
    timeout = 60.0 + project.modules_loaded / 100
    targets = [*((EDIT_MODELS,) if MODELS in wanted else ()), *project.edits.values()]
    try:
        with running(
            tool,
            project,
            cell.workers,
            settings.threads,
            host=host,
            slug=cell.slug,
            timeout=timeout,
            targets=targets,
        ) as session:
            result.startup_s = round(session.startup_s, 3)
            answered = ", ".join(
                f"{len(pids)}/{session.expected} on {target.url}"
                for target, pids in session.warmed.items()
            )
            progress(f"{cell.slug}: up in {result.startup_s} s, workers answered {answered}")
            for name in (n for n in ORDER if n in wanted):
                result.results[name] = _measure(name, session, settings, edits)
                progress(f"{cell.slug}: {name}: {_describe(name, result.results[name])}")
    except StartupError as error:
        result.status, result.reason = "failed", f"server did not start: {error}"
        progress(f"{cell.slug}: FAILED: {result.reason}")
    except Exception as error:  # one broken cell must not lose the rest of the run
        result.status, result.reason = "failed", f"{error!r}"
        progress(f"{cell.slug}: FAILED: {traceback.format_exc()}")
    return result
