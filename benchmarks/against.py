"""`python -m benchmarks.against REF TOOL[,TOOL...] [--out FILE] [--keep]`: before and after a
change, side by side in one run.

For the tools named, on the demo (2 workers x 4 threads): save -> fresh with its per-step
times, stale answers and lost requests, as the main table measures them. Each reloader tool
runs twice, with the package under test and, as `TOOL@REF`, with the package as committed at
git REF; a server's own reloader named too gives the ratio. On a shared machine the load
changes from one run to the next: comparing two runs compares the load as much as the code.
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
from .plan import LATENCY, LOST, Cell
from .project import snapshot_at, snapshot_reloader
from .servers import TOOLS, Launch, Tool
from .session import Host
from .summary import reference


def at_ref(tool: Tool, ref: str, site: Path) -> Tool:
    """`tool` serving the reloader snapshot in `site` (first on sys.path, as the run's own)."""
    command = tool.command

    def at(launch: Launch) -> tuple[list[str], dict[str, str]]:
        moved = dataclasses.replace(launch, site=site)
        argv, env = command(moved)
        return argv, {**env, "PYTHONPATH": f"{site}:{launch.project.root}"}

    return dataclasses.replace(
        tool, name=f"{tool.name}@{ref}", label=f"{tool.label} @{ref}", command=at
    )


def _row(name: str, entry: dict[str, Any], own: dict[str, Any] | None) -> str:
    latency, lost = entry.get(LATENCY, {}), entry.get(LOST, {})
    if "median_s" not in latency:
        return f"| {name} | failed: {entry} |"
    ratio = f"x{latency['median_s'] / own['median_s']:.2f}" if own else "-"
    steps = ", ".join(f"{k} {v} s" for k, v in latency.get("steps_median_s", {}).items())
    stale = f"{latency['stale']['stale']} / {latency['stale']['answers_after_fresh']}"
    return (
        f"| {name} | {latency['median_s']} s | {latency['p90_s']} s | {ratio} | {steps} | "
        f"{stale} | {lost.get('failed')} / {lost.get('requests')} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.against", description=__doc__)
    parser.add_argument("ref", help="the git commit or branch to compare with")
    parser.add_argument("tools", help="comma-separated: " + ", ".join(TOOLS))
    parser.add_argument("--out", type=Path, help="write the raw results here (JSON)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir with the logs")
    args = parser.parse_args(argv)
    names = args.tools.split(",")
    unknown = [n for n in names if n not in TOOLS]
    if unknown:
        parser.error(f"unknown tools {unknown}")
    procs.install_cleanup()
    workdir = Path(tempfile.mkdtemp(prefix="reloader-against-"))
    workdir.chmod(0o755)
    try:
        site, digest = snapshot_reloader(workdir)
        before = snapshot_at(workdir, args.ref)
        order: list[str] = []
        for name in names:
            if TOOLS[name].uses_reloader:
                based = at_ref(TOOLS[name], args.ref, before)
                TOOLS[based.name] = based
                order.append(based.name)
            order.append(name)
        print(f"under test: sources {digest}; before: {args.ref} in {before}", flush=True)
        host = Host(workdir, None, None, site)
        cells = {Cell(0, "demo", FULL.workers, name): {LATENCY, LOST} for name in order}
        results, _ = runner.run(cells, FULL, host, runner.Progress())
    except KeyboardInterrupt:
        print("interrupted: servers stopped", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
        if args.keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    by_tool = {r.cell.tool: r.results for r in results}
    if args.out:
        args.out.write_text(json.dumps(by_tool, indent=1, default=str), encoding="utf-8")
    print("| tool | save → fresh, median | p90 | vs own reloader | steps | stale | lost |")
    print("|---|---|---|---|---|---|---|")
    for name in order:
        print(_row(name, by_tool[name], by_tool.get(reference(name), {}).get(LATENCY)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
