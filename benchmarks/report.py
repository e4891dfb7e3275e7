"""Write the results: JSON, a Markdown summary, and (on request) README.md's bench section.

Each section's part of the summary sits between markers of its own inside the bench markers,
so a run of some sections (`--only`) can replace just theirs in the README."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from .config import BROWSER_REFERENCE, MAIN_TOOLS, REFERENCE, SCALE_TOOLS
from .plan import BROWSER, DEMO_READY, REAL, SECTIONS, WAGTAIL
from .project import REPO
from .servers import TOOLS

START, END = "<!-- bench:start -->", "<!-- bench:end -->"
README = REPO / "README.md"
PROJECT_LABELS = {WAGTAIL: "Wagtail site", DEMO_READY: "demo, `ready()` imports the views"}


def markers(section: str) -> tuple[str, str]:
    return f"<!-- bench:{section}:start -->", f"<!-- bench:{section}:end -->"


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


def _real_table(data: dict[str, Any]) -> list[str]:
    title = "Save → fresh for each kind of edit, on a real project"
    real = data.get("real")
    if real is None:  # a results.json from before this was measured
        return [f"{title}: not measured."]
    meta = data["meta"]
    wagtail = data.get("projects", {}).get(WAGTAIL, {}).get("modules_loaded")
    rows = [
        f"{title} (gunicorn gthread, {meta['workers']} workers x {meta['threads']} threads): "
        f"the site `wagtail start` makes (Wagtail {meta['versions'].get('wagtail')}, "
        f"{_num(wagtail)} module files per worker), migrated, with one page added; to it a "
        "view module wired into its URLconf and an app whose `AppConfig.ready()` imports a "
        "`signals.py` that imports that app's views. The models edit is polled on the page "
        "Wagtail renders. And the demo with the same habit: its `ready()` imports a signals "
        "module that imports the views, so every view edit there is a file warm mode's "
        "arbiter holds. *Lost*: requests that failed or were refused while the saves were "
        "followed.",
        "",
        f"| project | edit | tool | save → fresh, median | p90 | vs {TOOLS[REFERENCE].label} "
        "| all workers fresh | stale answers | lost requests |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for project, kinds in real.items():
        for kind, tools in kinds.items():
            file = next((e["file"] for e in tools.values() if "file" in e), None)
            edit = f"{kind}, `{file}`" if file else kind
            for tool, entry in tools.items():
                lost = entry.get("lost", {})
                cells = [
                    *_latency_cells(entry),
                    _cell(entry, _num(entry.get("all_fresh_median_s"), " s")),
                    _stale_cell(entry.get("stale", {}), entry),
                    _cell(entry, f"{lost.get('failed')} / {lost.get('requests')}"),
                ]
                label = PROJECT_LABELS.get(project, project)
                rows.append(f"| {label} | {edit} " + _row(tool, entry, cells))
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


def _command(meta: dict[str, Any]) -> str:
    command = "python -m benchmarks" + (" --quick" if meta["quick"] else "")
    if meta.get("sections") and set(meta["sections"]) != set(SECTIONS):
        command += " --only " + ",".join(meta["sections"])
    return command


def _sections(data: dict[str, Any]) -> dict[str, list[str]]:
    """Each section's lines, in the order the summary shows them."""
    meta = data["meta"]
    return {
        "main": [
            "Save → fresh: from an atomic save of `pages/version.py` to the first response "
            "with the new code (polling every few ms on new connections); *all workers "
            "fresh*: until every worker answered with it. Stale answers: old code served "
            "after the first fresh answer. Lost: failed, refused or 5xx requests under steady "
            "load across reloads. Idle CPU: extra CPU of all server processes over a quiet "
            "period (after a settling period) against the same server without reloading.",
            "",
            *_main_table(data),
        ],
        "models": _models_table(data),
        REAL: _real_table(data),
        BROWSER: _browser_table(data),
        "overhead": _overhead_table(data),
        "scale": [
            "Scale (gunicorn, demo project): median save → fresh, idle CPU extra (% of a "
            "core), extra CPU in the first seconds after start (watchers' first scans)",
            "",
            *_scale_table(data["scale"]["workers"], "workers"),
            "",
            f"Scale ({meta['workers']} workers): by module files loaded per worker",
            "",
            *_scale_table(data["scale"]["files"], "files"),
        ],
    }


def markdown(data: dict[str, Any], chart: Path | None) -> str:
    meta = data["meta"]
    measured = (
        f"Measured {meta['finished']} ({'quick' if meta['quick'] else 'full'} run, "
        f"{meta['duration_s']:.0f} s) on {meta['cpus']} cores, Python {meta['python']}, "
        f"{meta['workers']} workers x {meta['threads']} threads, "
        f"Django {meta['versions']['django']} with the admin; `{_command(meta)}`."
    )
    run = set(meta.get("sections") or SECTIONS)
    partial = run != set(SECTIONS)
    lines = [measured]
    for name, body in _sections(data).items():
        if partial and name not in run:
            continue
        start, end = markers(name)
        # A section written into the README alone says when it was measured.
        lines += ["", start, *([measured, ""] if partial else []), *body, end]
    if chart is not None:
        lines += ["", f"![benchmarks]({os.path.relpath(chart, REPO)})"]
    return "\n".join(lines) + "\n"


def update_readme(text: str, readme: Path = README, sections: list[str] | None = None) -> list[str]:
    """Write `text` between the bench markers, or with `sections` only those sections' parts
    of it over theirs. Returns the markers missing from the README (or from `text`); when any
    is, nothing is written."""
    if not readme.is_file():
        return [START]
    content = readme.read_text(encoding="utf-8")
    if sections is None:
        found = _inside(content, START, END)
        if found is None:
            return [START]
        start, end = found
        readme.write_text(content[:start] + "\n" + text + content[end:], encoding="utf-8")
        return []
    missing = []
    for section in sections:
        ours, theirs = _inside(text, *markers(section)), _inside(content, *markers(section))
        if ours is None or theirs is None:
            missing.append(markers(section)[0])
            continue
        content = content[: theirs[0]] + text[ours[0] : ours[1]] + content[theirs[1] :]
    if not missing:
        readme.write_text(content, encoding="utf-8")
    return missing


def _inside(content: str, start: str, end: str) -> tuple[int, int] | None:
    """Where the text between the two markers begins and ends, or None. A marker stands on a
    line of its own: prose that names one is not one."""
    first = re.search(f"^{re.escape(start)}$", content, re.MULTILINE)
    last = re.search(f"^{re.escape(end)}$", content, re.MULTILINE)
    if first is None or last is None or last.start() < first.end():
        return None
    return first.end(), last.start()
