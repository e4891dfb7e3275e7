"""Write the results: JSON, a Markdown summary, and (on request) README.md's bench section."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .config import BROWSER_REFERENCE, MAIN_TOOLS, REFERENCE, SCALE_TOOLS
from .plan import SECTIONS
from .project import REPO
from .servers import TOOLS

START, END = "<!-- bench:start -->", "<!-- bench:end -->"
README = REPO / "README.md"


def write_json(data: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def _num(value: Any, unit: str = "", digits: int = 3) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}g}{unit}" if isinstance(value, float) else f"{value}{unit}"


def _cell(entry: dict[str, Any], text: str) -> str:
    return text if entry.get("status") == "ok" else entry.get("status", "-")


def _times(value: Any) -> str:
    return "-" if value is None else f"x{value:.2g}"


def _row(tool: str, entry: dict[str, Any], cells: list[str]) -> str:
    """The tool's row, or one saying why it was skipped (the cells then say nothing)."""
    label = TOOLS[tool].label
    if entry["status"] == "skipped":
        return f"| {label} | skipped: {entry.get('reason')} " + "|" * len(cells) + " "
    return " | ".join([f"| {label}", *cells]) + " |"


def _latency_cells(lat: dict[str, Any]) -> list[str]:
    """Median, p90, ratio to the reference reloader."""
    return [
        _cell(lat, _num(lat.get("median_s"), " s")),
        _cell(lat, _num(lat.get("p90_s"), " s")),
        _cell(lat, _times(lat.get("x_peer"))),
    ]


def _stale_cell(stale: dict[str, Any], entry: dict[str, Any]) -> str:
    return _cell(entry, f"{stale.get('stale')} / {stale.get('answers_after_fresh')}")


def _main_table(data: dict[str, Any]) -> list[str]:
    large = data["meta"]["large_project"]
    rows = [
        "| tool | save → fresh, median | p90 | vs the server's own reloader | all workers fresh | "
        f"stale answers | lost requests | idle CPU, demo | idle CPU, {large} |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for tool in MAIN_TOOLS:
        lat, stale = data["latency"][tool], data["stale"][tool]
        lost = data["lost"][tool]
        idle = [data["idle"][p][tool] for p in data["idle"]]
        rows.append(
            _row(
                tool,
                lat,
                [
                    *_latency_cells(lat),
                    _cell(lat, _num(lat.get("all_fresh_median_s"), " s")),
                    _stale_cell(stale, stale),
                    _cell(lost, f"{lost.get('failed')} / {lost.get('requests')}"),
                    *(_cell(i, f"{i.get('extra_core_pct', 0):+.2f} % core") for i in idle),
                ],
            )
        )
    return rows


def _models_table(data: dict[str, Any]) -> list[str]:
    title = (
        "Save → fresh after an edit of `pages/models.py` "
        f"(gunicorn, {data['meta']['workers']} workers)"
    )
    models = data.get("models")
    if models is None:  # a results.json from before this was measured
        return [f"{title}: not measured."]
    rows = [
        f"{title}: the module Django imports its models from at setup, polled at "
        "`/models-version/`.",
        "",
        f"| tool | save → fresh, median | p90 | vs {TOOLS[REFERENCE].label} | stale answers |",
        "|---|---|---|---|---|",
    ]
    for tool, entry in models.items():
        stale = _stale_cell(entry.get("stale", {}), entry)
        rows.append(_row(tool, entry, [*_latency_cells(entry), stale]))
    return rows


def _repaint_cells(kind: dict[str, Any], entry: dict[str, Any]) -> list[str]:
    """Median, p90, ratio to runserver; the timeouts when some saves never repainted."""
    timeouts = kind.get("timeouts") or 0
    median = _num(kind.get("median_s"), " s") + (f" ({timeouts} timeouts)" if timeouts else "")
    return [
        _cell(entry, median),
        _cell(entry, _num(kind.get("p90_s"), " s")),
        _cell(entry, _times(kind.get("x_runserver"))),
    ]


def _grace_cell(entry: dict[str, Any]) -> str:
    grace = entry.get("grace")
    if not grace:
        return _cell(entry, "n/a")
    return _cell(
        entry,
        f"{grace['old_alive_after_grace']} / {grace['view_saves_checked']}"
        + (f" ({grace['still_running']} cut)" if grace["still_running"] else ""),
    )


def _browser_table(data: dict[str, Any]) -> list[str]:
    title = "Save → page repainted in a real browser tab"
    browser = data.get("browser")
    if browser is None:  # a results.json from before this was measured
        return [f"{title}: not measured."]
    rows = [
        f"{title} (headless Chromium on `/hello/`, django-browser-reload and "
        "django-debug-toolbar in the page; gunicorn gthread, "
        f"{data['meta']['workers']} workers x {data['meta']['threads']} threads): from the "
        "save to the first paint of the document the tab reloaded by itself. django-browser-"
        "reload runs one SharedWorker per origin, so two tabs share one event stream, and it "
        "tells only the tab loaded last to reload: *other tab* counts the saves the first tab "
        "repainted too. *Old process past grace*: view saves after which a process that "
        "served before the save was still alive RELOADER_GRACE (5 s) later (in brackets, "
        "requests reloader cut at the grace). A kind whose first two saves never repainted "
        "the tab within the timeout skips its other saves.",
        "",
        f"| tool | view edit, median | p90 | vs {TOOLS[BROWSER_REFERENCE].label} "
        "| template edit, median | p90 | vs runserver "
        "| view edit, two tabs, median | p90 | vs runserver | other tab "
        "| old process past grace |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for tool, entry in browser.items():
        two = entry.get("view_two_tabs", {})
        cells = [
            *_repaint_cells(entry.get("view", {}), entry),
            *_repaint_cells(entry.get("template", {}), entry),
            *_repaint_cells(two, entry),
            _cell(entry, f"{two.get('other_tab_repainted')} / {two.get('saves')}"),
            _grace_cell(entry),
        ]
        rows.append(_row(tool, entry, cells))
    return rows


def _overhead_table(data: dict[str, Any]) -> list[str]:
    rows = [
        "| server | app | req/s (wrk), median | best run | best vs bare | RSS per worker "
        "| PSS, all processes |",
        "|---|---|---|---|---|---|---|",
    ]
    names = {"bare": "bare app", "on": "wrapped, reloading", "off": "wrapped, disabled"}
    for family, variants in data["overhead"].items():
        for variant, row in variants.items():
            rows.append(
                " | ".join(
                    [
                        f"| {family}",
                        names[variant],
                        _cell(row, _num(row.get("rps_median"), digits=4)),
                        _cell(row, _num(row.get("rps_best"), digits=4)),
                        _cell(row, _times(row.get("rps_best_vs_bare"))),
                        _cell(row, _num(row.get("rss_mib_per_worker"), " MiB")),
                        _cell(row, _num(row.get("pss_mib_total"), " MiB")),
                    ]
                )
                + " |"
            )
    return rows


def _scale_table(points: dict[str, list[dict[str, Any]]], axis: str) -> list[str]:
    first = points[SCALE_TOOLS[0]]
    heads = [
        f"{p['workers']} workers" if axis == "workers" else f"{p['modules']} files" for p in first
    ]
    rows = ["| tool | " + " | ".join(heads) + " |", "|---|" + "---|" * len(heads)]
    for tool in SCALE_TOOLS:
        cells = [
            _cell(
                p,
                f"{_num(p.get('latency_median_s'), ' s')}, "
                f"{p.get('idle_extra_core_pct', 0):+.2f} %, "
                f"{_num(p.get('after_start_extra_cpu_s'), ' CPU s')}",
            )
            for p in points[tool]
        ]
        rows.append(f"| {TOOLS[tool].label} | " + " | ".join(cells) + " |")
    return rows


def markdown(data: dict[str, Any], chart: Path | None) -> str:
    meta = data["meta"]
    command = "python -m benchmarks" + (" --quick" if meta["quick"] else "")
    if meta.get("sections") and set(meta["sections"]) != set(SECTIONS):
        command += " --only " + ",".join(meta["sections"])
    lines = [
        f"Measured {meta['finished']} ({'quick' if meta['quick'] else 'full'} run, "
        f"{meta['duration_s']:.0f} s) on {meta['cpus']} cores, Python {meta['python']}, "
        f"{meta['workers']} workers x {meta['threads']} threads, "
        f"Django {meta['versions']['django']} with the admin; `{command}`.",
        "",
        "Save → fresh: from an atomic save of `pages/version.py` to the first response with the "
        "new code (polling every few ms on new connections); *all workers fresh*: until every "
        "worker answered with it. Stale answers: old code served after the first fresh "
        "answer. Lost: failed, refused or 5xx requests under steady load across reloads. Idle "
        "CPU: extra CPU of all server processes over a quiet period (after a settling period) "
        "against the same server without reloading.",
        "",
        *_main_table(data),
        "",
        *_models_table(data),
        "",
        *_browser_table(data),
        "",
        *_overhead_table(data),
        "",
        "Scale (gunicorn, demo project): median save → fresh, idle CPU extra (% of a core), "
        "extra CPU in the first seconds after start (watchers' first scans)",
        "",
        *_scale_table(data["scale"]["workers"], "workers"),
        "",
        f"Scale ({meta['workers']} workers): by module files loaded per worker",
        "",
        *_scale_table(data["scale"]["files"], "files"),
    ]
    if chart is not None:
        lines += ["", f"![benchmarks]({os.path.relpath(chart, REPO)})"]
    return "\n".join(lines) + "\n"


def update_readme(text: str, readme: Path = README) -> bool:
    """Replace what is between the markers; change nothing (and say so) without them."""
    if not readme.is_file():
        return False
    content = readme.read_text(encoding="utf-8")
    start, end = content.find(START), content.find(END)
    if start < 0 or end < start:
        return False
    readme.write_text(content[: start + len(START)] + "\n" + text + content[end:], encoding="utf-8")
    return True
