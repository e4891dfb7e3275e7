"""`python -m benchmarks.busy [--tools TOOL,...] [--saves N] [--seconds S] [--out FILE]`: a
server of one worker (gunicorn's default) with a slow request in flight at each save.

On the demo, 1 worker x 4 threads: before each save a request of S seconds (`/slow/?s=S`,
4 by default) begins; then save → first fresh answer, as the main table measures it, and how
the slow request ended (answered, or lost). A server that forks a worker's replacement only
once the old worker has exited serves nothing new until that request ends; one that kills the
old process at once (runserver) loses it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from . import procs, runner
from .config import FULL
from .plan import BUSY, Cell
from .project import snapshot_reloader
from .servers import TOOLS
from .session import Host

REFERENCE = "gunicorn-reload"
DEFAULT_TOOLS = ("reloader-gunicorn", "reloader-warm", REFERENCE, "runserver")


def row(name: str, entry: dict[str, Any], own: dict[str, Any] | None) -> str:
    """One line of the table; `own` is gunicorn --reload's entry, for the ratio."""
    if "median_s" not in entry:
        return f"| {name} | failed: {entry} |"
    ratio = f"x{entry['median_s'] / own['median_s']:.2f}" if own and own.get("median_s") else "-"
    slow = entry["slow"]
    return (
        f"| {name} | {entry['median_s']} s | {entry['p90_s']} s | {ratio} | "
        f"{slow['requests'] - slow['lost']} / {slow['requests']} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.busy", description=__doc__)
    parser.add_argument("--tools", default=",".join(DEFAULT_TOOLS), help=", ".join(TOOLS))
    parser.add_argument("--saves", type=int, default=10, help="saves per tool (10)")
    parser.add_argument("--seconds", type=float, default=4.0, help="the slow request (4 s)")
    parser.add_argument("--out", type=Path, help="write the raw results here (JSON)")
    args = parser.parse_args(argv)
    names = args.tools.split(",")
    unknown = [n for n in names if n not in TOOLS]
    if unknown:
        parser.error(f"unknown tools {unknown}; known: {', '.join(TOOLS)}")
    settings = dataclasses.replace(
        FULL, edits=args.saves, scale_edits=args.saves, busy_seconds=args.seconds
    )
    procs.install_cleanup()
    workdir = Path(tempfile.mkdtemp(prefix="reloader-busy-"))
    workdir.chmod(0o755)
    try:
        site, digest = snapshot_reloader(workdir)
        print(f"under test: sources {digest}", flush=True)
        cells = {Cell(0, "demo", 1, name): {BUSY} for name in names}
        results, _ = runner.run(cells, settings, Host(workdir, None, None, site), runner.Progress())
    except KeyboardInterrupt:
        print("interrupted: servers stopped", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    by_tool = {
        r.cell.tool: r.results.get(BUSY, {"status": r.status, "reason": r.reason}) for r in results
    }
    if args.out:
        args.out.write_text(json.dumps(by_tool, indent=1, default=str), encoding="utf-8")
    print(
        f"| 1 worker, a {args.seconds:g} s request in flight | save → fresh, median | p90 "
        "| vs gunicorn --reload | slow requests answered |"
    )
    print("|---|---|---|---|---|")
    for name in names:
        print(row(name, by_tool[name], by_tool.get(REFERENCE)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
