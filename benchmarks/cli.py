"""`python -m benchmarks [--quick] [--only SECTIONS] [--out DIR] [--update-readme]`: run, then
write the results."""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib.metadata
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from . import access, chart, plan, procs, report, runner
from .config import FULL, QUICK, Settings
from .project import remove_installed, snapshot_reloader
from .servers import APACHE_FAMILIES, TOOLS, unavailable
from .session import Host
from .summary import Results, raw_cells, summarize

DEFAULT_OUT = Path(__file__).resolve().parent / "results"


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="every measurement once, small (about three minutes)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help=f"where results.json, results.md and bench.png go ({DEFAULT_OUT})",
    )
    parser.add_argument(
        "--update-readme",
        action="store_true",
        help="write the tables between the bench markers of README.md (with --only: only "
        "those sections' tables, between their own markers)",
    )
    parser.add_argument(
        "--tools", help="comma-separated tool names to run (debugging): " + ", ".join(TOOLS)
    )
    parser.add_argument(
        "--only",
        help="comma-separated sections to measure (the others say 'not in this run'): "
        + ", ".join(plan.SECTIONS),
    )
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="measure nothing: redraw results.md, bench.png (and README) from --out/results.json",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temp dir with the projects and server logs"
    )
    parser.add_argument(
        "--wagtail-site",
        type=Path,
        help="copy this migrated Wagtail site (the wagtail folder of a run kept with --keep) "
        "instead of making one: no wagtail start, no ~20 s of migrate",
    )
    return parser.parse_args(argv)


def _meta(
    settings: Settings,
    began: float,
    started: str,
    apache_note: str,
    workdir: Path,
    sections: set[str] | None,
) -> dict[str, Any]:
    return {
        "schema": 1,
        "started": started,
        "finished": _now(),
        "duration_s": round(time.monotonic() - began, 1),
        "quick": settings.quick,
        "sections": sorted(sections) if sections else list(plan.SECTIONS),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        # The machine is shared: a load average well above what the run itself causes (~1-2)
        # means other work competed with the servers.
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        "workers": settings.workers,
        "threads": settings.threads,
        "large_project": settings.large,
        "apache_access": apache_note,
        "workdir": str(workdir),  # removed at the end unless --keep
        "versions": {
            d: _version(d)
            for d in ("wsgi-reloader", "django", "gunicorn", "mod_wsgi", "watchfiles", "wagtail")
        },
        "settings": dataclasses.asdict(settings),
    }


def _measure(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """Run every planned server and return the results document."""
    only = set(args.tools.split(",")) if args.tools else None
    sections = set(args.only.split(",")) if args.only else None
    progress = runner.Progress()
    began, started = time.monotonic(), _now()
    workdir = Path(tempfile.mkdtemp(prefix="reloader-bench-"))
    workdir.chmod(0o755)  # Apache's user reads the projects in it
    try:
        cells = plan.build(settings, only, sections)
        apache_user, apache_problem, apache_note = None, None, "no mod_wsgi tool in the plan"
        if any(TOOLS[c.tool].family in APACHE_FAMILIES for c in cells):
            apache_user, apache_problem, apache_note = access.check(workdir)
            progress(
                f"apache access: {apache_note}" + (f"; {apache_problem}" if apache_problem else "")
            )
        progress(f"{len(cells)} server starts planned ({'quick' if args.quick else 'full'})")
        site, digest = snapshot_reloader(workdir)
        progress(f"reloader under test: sources {digest}, copied to {site}")
        host = Host(workdir, apache_user, apache_problem, site, args.wagtail_site)
        results, projects = runner.run(cells, settings, host, progress)
        return {
            "meta": _meta(settings, began, started, apache_note, workdir, sections)
            | {"reloader_sources_sha256": digest},
            "tools": {
                name: {
                    "label": t.label,
                    "family": t.family,
                    "skipped": unavailable(t, apache_problem),
                }
                for name, t in TOOLS.items()
            },
            "projects": {
                name: {"generated_modules": p.generated_modules, "modules_loaded": p.modules_loaded}
                for name, p in projects.items()
            },
            **summarize(Results(results, projects, settings)),
            "cells": raw_cells(results),
        }
    finally:
        procs.stop_all()
        remove_installed()
        if args.keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _publish(data: dict[str, Any], out: Path, update_readme: bool) -> None:
    """results.json, results.md, bench.png in `out`; README.md's bench section on request."""
    out.mkdir(parents=True, exist_ok=True)
    png = out / "bench.png"
    chart.draw(data, png)
    report.write_json(data, out / "results.json")
    text = report.markdown(data, png)
    (out / "results.md").write_text(text, encoding="utf-8")
    print(f"wrote {out / 'results.json'}, results.md, bench.png", flush=True)
    if update_readme:
        run = data["meta"].get("sections") or list(plan.SECTIONS)
        sections = None if set(run) == set(plan.SECTIONS) else run
        missing = report.update_readme(text, sections=sections)
        if missing:
            print(f"README not updated: no {', '.join(missing)} ... in {report.README}")
        else:
            print(f"updated {report.README}: {', '.join(sections or ['every section'])}")
    print(text)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    unknown = set(args.only.split(",")) - set(plan.SECTIONS) if args.only else set()
    if unknown:
        print(f"unknown sections {sorted(unknown)}; known: {', '.join(plan.SECTIONS)}")
        return 2
    if args.render_only:
        data = json.loads((args.out / "results.json").read_text(encoding="utf-8"))
        _publish(data, args.out, args.update_readme)
        return 0
    procs.install_cleanup()
    try:
        data = _measure(args, QUICK if args.quick else FULL)
    except KeyboardInterrupt:
        print("interrupted: servers stopped", file=sys.stderr)
        return 130
    _publish(data, args.out, args.update_readme)
    return 0
