"""Turn the per-server results into the published numbers: medians and ratios to the peers.

Every entry has a "status": "ok" with its numbers, or "skipped"/"failed" with a "reason", so a
missing tool shows up as such instead of as a hole. Ratios compare a tool with reloader on the
same server (runserver, which has no reloader twin, with reloader + gunicorn).
"""

from __future__ import annotations

from typing import Any

from . import stats
from .config import BROWSER_REFERENCE, MAIN_TOOLS, MODELS_TOOLS, REFERENCE, SCALE_TOOLS, Settings
from .plan import BROWSER, IDLE, LATENCY, LIVE, LOST, MODELS, REAL, REAL_PROJECTS, THROUGHPUT, Cell
from .project import Project
from .runner import CellResult
from .servers import OVERHEAD, TOOLS

Entry = dict[str, Any]
REFERENCES = {
    "gunicorn": "gunicorn-reload",
    "mod_wsgi": "mod_wsgi-reload",
    "apache": "mod_wsgi-reload",  # mod_wsgi's own reloader comes with mod_wsgi-express only
    "uwsgi": "uwsgi-autoreload",
}


def reference(tool: str) -> str:
    return REFERENCES.get(TOOLS[tool].family, REFERENCE)


class Results:
    def __init__(
        self, cells: list[CellResult], projects: dict[str, Project], settings: Settings
    ) -> None:
        self.cells = {(c.cell.tool, c.cell.project, c.cell.workers): c for c in cells}
        self.projects = projects
        self.settings = settings

    def entry(self, tool: str, project: str, workers: int, name: str) -> Entry:
        cell = self.cells.get((tool, project, workers))
        if cell is None:
            return {"status": "skipped", "reason": "not in this run"}
        if cell.status != "ok":
            return {"status": cell.status, "reason": cell.reason}
        data = cell.results.get(name)
        if data is None:
            return {"status": "failed", "reason": f"{name} was not measured"}
        return {"status": data.get("status", "ok"), **data}

    def idle(self, tool: str, project: str, workers: int) -> Entry:
        """CPU over the quiet period, minus the same server without reloading."""
        own = self.entry(tool, project, workers, IDLE)
        base_tool = TOOLS[tool].baseline
        base = self.entry(base_tool, project, workers, IDLE)
        if own["status"] != "ok":
            return own
        if base["status"] != "ok":
            return {"status": "failed", "reason": f"baseline {base_tool}: {base.get('reason')}"}
        extra = own["cpu_s"] - base["cpu_s"]
        return {
            "status": "ok",
            "seconds": own["seconds"],
            "cpu_s": own["cpu_s"],
            "baseline": base_tool,
            "baseline_cpu_s": base["cpu_s"],
            "extra_cpu_s": round(extra, 4),
            "extra_core_pct": round(100 * extra / own["seconds"], 3),
            "after_start_cpu_s": own["after_start_cpu_s"],
            "baseline_after_start_cpu_s": base["after_start_cpu_s"],
        }

    def latency(self, tool: str, project: str, workers: int) -> Entry:
        entry = dict(self.entry(tool, project, workers, LATENCY))
        entry.pop("stale", None)
        entry.pop("lost", None)  # the main table's lost requests are measured under load
        return entry


def _with_ratio(entries: dict[str, Entry], key: str, label: str) -> None:
    """Add `<label>` = value / value of the reloader on the same server."""
    for tool, entry in entries.items():
        ref = entries.get(reference(tool), {})
        if entry["status"] == "ok":
            entry[label] = stats.rounded(stats.ratio(entry.get(key), ref.get(key)), 2)
            entry[f"{label}_reference"] = reference(tool)


BROWSER_KINDS = ("view", "template", "view_two_tabs")


def _browser(results: Results) -> dict[str, Entry]:
    """Per tool and edit kind: repaint median, p90, and the ratio to runserver's."""
    tools = results.settings.browser_tools
    entries = {t: results.entry(t, LIVE, results.settings.workers, BROWSER) for t in tools}
    ref = entries.get(BROWSER_REFERENCE, {})
    for entry in entries.values():
        if entry["status"] != "ok":
            continue
        for kind in BROWSER_KINDS:
            own, theirs = entry[kind], ref.get(kind, {}) if ref.get("status") == "ok" else {}
            own["x_runserver"] = stats.rounded(
                stats.ratio(own.get("median_s"), theirs.get("median_s")), 2
            )
    return entries


def _real(results: Results) -> dict[str, dict[str, dict[str, Entry]]]:
    """Per project, kind of edit and tool: save → fresh, with the ratio to gunicorn --reload's
    median for the same edit of the same project."""
    w = results.settings.workers
    real: dict[str, dict[str, dict[str, Entry]]] = {}
    for project in REAL_PROJECTS:
        cells = {t: results.entry(t, project, w, REAL) for t in results.settings.real_tools}
        kinds = dict.fromkeys(k for e in cells.values() if e["status"] == "ok" for k in e)
        kinds.pop("status", None)
        real[project] = {
            kind: {
                tool: {"status": "ok", **entry[kind]}
                if entry["status"] == "ok"
                else {"status": entry["status"], "reason": entry.get("reason")}
                for tool, entry in cells.items()
            }
            for kind in kinds
        } or {"-": cells}
        for entries in real[project].values():
            _with_ratio(entries, "median_s", "x_peer")
    return real


def _scale_point(results: Results, tool: str, project: str, workers: int) -> Entry:
    latency = results.latency(tool, project, workers)
    idle = results.idle(tool, project, workers)
    point: Entry = {
        "workers": workers,
        "project": project,
        "modules": results.projects[project].modules_loaded
        if project in results.projects
        else None,
    }
    if latency["status"] != "ok" or idle["status"] != "ok":
        bad = latency if latency["status"] != "ok" else idle
        return {**point, "status": bad["status"], "reason": bad.get("reason")}
    return {
        **point,
        "status": "ok",
        "latency_median_s": latency["median_s"],
        "latency_p90_s": latency["p90_s"],
        "all_fresh_median_s": latency["all_fresh_median_s"],
        "idle_extra_cpu_s": idle["extra_cpu_s"],
        "idle_extra_core_pct": idle["extra_core_pct"],
        "after_start_extra_cpu_s": round(
            idle["after_start_cpu_s"] - idle["baseline_after_start_cpu_s"], 4
        ),
    }


def summarize(results: Results) -> dict[str, Any]:
    s, w = results.settings, results.settings.workers
    latency = {t: results.latency(t, "demo", w) for t in MAIN_TOOLS}
    _with_ratio(latency, "median_s", "x_peer")
    stale = {}
    for tool in MAIN_TOOLS:
        entry = results.entry(tool, "demo", w, LATENCY)
        stale[tool] = (
            {"status": "ok", **entry["stale"]}
            if entry["status"] == "ok"
            else {"status": entry["status"], "reason": entry.get("reason")}
        )
    lost = {t: results.entry(t, "demo", w, LOST) for t in MAIN_TOOLS}
    models = {t: results.entry(t, "demo", w, MODELS) for t in MODELS_TOOLS}
    _with_ratio(models, "median_s", "x_peer")
    idle = {p: {t: results.idle(t, p, w) for t in MAIN_TOOLS} for p in ("demo", s.large)}
    for entries in idle.values():
        _with_ratio(entries, "extra_cpu_s", "x_peer")
    overhead = {}
    for family, variants in OVERHEAD.items():
        rows = {
            v: results.entry(t, "demo", w, THROUGHPUT) | {"tool": t} for v, t in variants.items()
        }
        bare = rows["bare"].get("rps_best")
        for row in rows.values():
            if row["status"] == "ok":
                row["rps_best_vs_bare"] = stats.rounded(stats.ratio(row["rps_best"], bare), 3)
        overhead[family] = rows
    scale = {
        "workers": {
            t: [_scale_point(results, t, "demo", n) for n in s.scale_workers] for t in SCALE_TOOLS
        },
        "files": {
            t: [_scale_point(results, t, p, w) for p in s.scale_projects] for t in SCALE_TOOLS
        },
    }
    return {
        "latency": latency,
        "stale": stale,
        "lost": lost,
        "models": models,
        "idle": idle,
        "overhead": overhead,
        "scale": scale,
        "browser": _browser(results),
        "real": _real(results),
    }


def raw_cells(cells: list[CellResult]) -> list[dict[str, Any]]:
    def row(c: CellResult) -> dict[str, Any]:
        cell: Cell = c.cell
        return {
            "tool": cell.tool,
            "project": cell.project,
            "workers": cell.workers,
            "status": c.status,
            "reason": c.reason,
            "startup_s": c.startup_s,
            "loadavg": c.loadavg,
            "results": c.results,
        }

    return [row(c) for c in cells]
