"""`benchmarks.against`: a tool run at another commit serves that commit's reloader snapshot,
on sys.path before the project, with the rest of its command unchanged."""

from __future__ import annotations

import subprocess
from pathlib import Path

from benchmarks.against import at_ref
from benchmarks.project import REPO, Project, snapshot_at
from benchmarks.servers import TOOLS, Launch


def _launch(root: Path, site: Path) -> Launch:
    project = Project("demo", root, "demo.wsgi:application", "demo.settings", 0, 0)
    return Launch(project, 8000, 2, 4, root / "server", None, site)


def test_a_tool_at_a_ref_serves_that_snapshot(tmp_path: Path) -> None:
    tool = TOOLS["reloader-uwsgi-lazy"]
    based = at_ref(tool, "abc123", tmp_path / "site-abc123")
    assert based.name == "reloader-uwsgi-lazy@abc123" and based.family == tool.family
    launch = _launch(tmp_path, tmp_path / "site")
    argv, env = based.command(launch)
    assert argv == tool.command(launch)[0] and "--lazy-apps" in argv
    assert env["PYTHONPATH"] == f"{tmp_path / 'site-abc123'}:{tmp_path}"


def test_snapshot_at_holds_the_package_as_committed(tmp_path: Path) -> None:
    head = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    site = snapshot_at(tmp_path, head)
    committed = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{head}:reloader/__init__.py"],
        capture_output=True,
        check=True,
    ).stdout
    assert (site / "reloader" / "__init__.py").read_bytes() == committed
