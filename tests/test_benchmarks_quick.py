"""`python -m benchmarks --quick` runs end to end and writes complete, well-formed results.

This checks the shape of the results and that every server was stopped, not the speed. It
starts 24 servers (about three minutes with the browser section's two and the real-project
section's Wagtail site, copied from the session's); deselect it with `-m "not bench"`.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks.config import SCALE_TOOLS

pytestmark = pytest.mark.bench

REPO = Path(__file__).resolve().parents[1]
MAIN_TOOLS = {
    "reloader-gunicorn",
    "reloader-warm",
    "gunicorn-reload",
    "runserver",
    "mod_wsgi-reload",
    "reloader-mod_wsgi",
    "reloader-apache",
    "reloader-uwsgi",
    "uwsgi-autoreload",
}
STATUSES = {"ok", "skipped", "failed"}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_entry(
    where: str, entry: dict[str, Any], skipped: str | None, numbers: tuple[str, ...]
) -> None:
    """Skipped exactly when the tool is unavailable; otherwise ok, with finite numbers."""
    status = entry.get("status")
    assert status in STATUSES, f"{where}: status {status!r}"
    assert status != "failed", f"{where}: failed: {entry.get('reason')}"
    if skipped:
        assert status == "skipped" and entry.get("reason"), f"{where}: {entry}"
        return
    assert status == "ok", f"{where}: {entry}"
    for key in numbers:
        assert _number(entry.get(key)), f"{where}: {key} = {entry.get(key)!r}"


@pytest.fixture(scope="module")
def results(
    tmp_path_factory: pytest.TempPathFactory, wagtail_template: Path
) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("bench")
    quick = ["--quick", "--out", str(out), "--wagtail-site", str(wagtail_template)]
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", *quick],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return out, json.loads((out / "results.json").read_text(encoding="utf-8"))


def test_files_are_written(results: tuple[Path, dict[str, Any]]) -> None:
    out, data = results
    assert (out / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (out / "results.md").read_text(encoding="utf-8")
    assert "| tool |" in table and "bench.png" in table
    assert data["meta"]["quick"] is True
    assert _number(data["meta"]["duration_s"])


def test_main_measurements_are_complete(results: tuple[Path, dict[str, Any]]) -> None:
    _, data = results
    skipped = {name: tool["skipped"] for name, tool in data["tools"].items()}
    for section in ("latency", "stale", "lost"):
        assert set(data[section]) == MAIN_TOOLS, section
    for tool in MAIN_TOOLS:
        _check_entry(
            f"latency {tool}",
            data["latency"][tool],
            skipped[tool],
            ("median_s", "p90_s", "x_peer"),
        )
        latency = data["latency"][tool]
        if latency["status"] == "ok":
            assert latency["timeouts"] == 0, f"{tool}: a save was never served"
            assert len(latency["samples_s"]) == latency["saves"] >= 1
            assert latency["p90_s"] >= latency["median_s"] > 0
        _check_entry(
            f"stale {tool}",
            data["stale"][tool],
            skipped[tool],
            ("stale", "answers_after_fresh", "stale_pct"),
        )
        _check_entry(
            f"lost {tool}", data["lost"][tool], skipped[tool], ("requests", "failed", "failed_pct")
        )
        lost = data["lost"][tool]
        if lost["status"] == "ok":
            assert lost["requests"] > 0 and sum(lost["by_kind"].values()) == lost["failed"]


def test_models_edit_is_measured_for_the_gunicorn_reloaders(
    results: tuple[Path, dict[str, Any]],
) -> None:
    out, data = results
    assert set(data["models"]) == {"reloader-gunicorn", "reloader-warm", "gunicorn-reload"}
    for tool, entry in data["models"].items():
        _check_entry(f"models {tool}", entry, data["tools"][tool]["skipped"],
                     ("median_s", "p90_s", "x_peer"))  # fmt: skip
        if entry["status"] == "ok":
            assert entry["timeouts"] == 0, f"{tool}: a models save was never served"
            assert entry["file"].endswith("models.py")
    assert "pages/models.py" in (out / "results.md").read_text(encoding="utf-8")


def test_browser_section_repaints_the_tab_by_itself(
    results: tuple[Path, dict[str, Any]],
) -> None:
    out, data = results
    settings = data["meta"]["settings"]
    assert set(data["browser"]) == set(settings["browser_tools"]) >= {"runserver"}
    for tool, entry in data["browser"].items():
        if entry["status"] == "skipped" and "chromium" in str(entry.get("reason")).lower():
            continue  # no browser on this machine: the section says so
        _check_entry(f"browser {tool}", entry, data["tools"][tool]["skipped"], ())
        for kind in ("view", "template", "view_two_tabs"):
            got = entry[kind]
            where = f"browser {tool} {kind}"
            assert got["timeouts"] == 0, f"{where}: the tab did not repaint by itself"
            assert got["saves"] == len(got["samples_s"]) == settings["browser_edits"], where
            assert 0 < got["median_s"] <= got["p90_s"] < settings["browser_timeout"], where
            assert _number(got["x_runserver"]), where
        assert 0 <= entry["view_two_tabs"]["other_tab_repainted"] <= settings["browser_edits"]
        if data["tools"][tool]["family"] == "gunicorn":
            grace = entry["grace"]
            assert grace["view_saves_checked"] == 2 * settings["browser_edits"], tool
            assert grace["old_alive_after_grace"] == 0, f"{tool}: {grace}"
    assert data["browser"]["runserver"]["view"]["x_runserver"] == 1
    assert "real browser tab" in (out / "results.md").read_text(encoding="utf-8")


def test_real_project_section_times_every_kind_of_edit(
    results: tuple[Path, dict[str, Any]],
) -> None:
    """The Wagtail site is generated, migrated and served; each kind of edit reaches every
    worker, and reloader serves no stale answer and loses no request on any of them."""
    out, data = results
    settings = data["meta"]["settings"]
    kinds = {"wagtail": {"view", "models", "settings", "ready"}, "demo-ready": {"view"}}
    assert {p: set(k) for p, k in data["real"].items()} == kinds
    assert (
        data["projects"]["wagtail"]["modules_loaded"] > data["projects"]["demo"]["modules_loaded"]
    )
    for project, by_kind in data["real"].items():
        for kind, tools in by_kind.items():
            assert set(tools) == set(settings["real_tools"]), (project, kind)
            for tool, entry in tools.items():
                where = f"real {project} {kind} {tool}"
                # wagtail is in the test extra: never skipped here.
                _check_entry(where, entry, data["tools"][tool]["skipped"], ("median_s", "p90_s"))
                assert entry["timeouts"] == 0 and entry["saves"] == settings["real_edits"], where
                if tool.startswith("reloader-"):
                    assert entry["stale"]["stale"] == 0, f"{where}: {entry['stale']}"
                    assert entry["lost"]["failed"] == 0, f"{where}: {entry['lost']}"
    table = (out / "results.md").read_text(encoding="utf-8")
    assert "<!-- bench:real:start -->" in table and "`feedback/views.py`" in table


def test_idle_covers_both_projects(results: tuple[Path, dict[str, Any]]) -> None:
    """Every tool on the demo; on the large project, in a quick run, the scale study's."""
    _, data = results
    large = data["meta"]["large_project"]
    assert set(data["idle"]) == {"demo", large}
    assert data["projects"]["large"]["modules_loaded"] > data["projects"]["demo"]["modules_loaded"]
    measured_on_large = set(SCALE_TOOLS)
    for project, tools in data["idle"].items():
        assert set(tools) == MAIN_TOOLS
        for tool, entry in tools.items():
            if project == large and tool not in measured_on_large:
                assert entry == {"status": "skipped", "reason": "not in this run"}, tool
                continue
            _check_entry(
                f"idle {project} {tool}",
                entry,
                data["tools"][tool]["skipped"],
                ("seconds", "cpu_s", "baseline_cpu_s", "extra_cpu_s", "extra_core_pct"),
            )


def test_overhead_has_three_variants_per_server(results: tuple[Path, dict[str, Any]]) -> None:
    _, data = results
    assert set(data["overhead"]) == {"gunicorn", "mod_wsgi"}
    for family, rows in data["overhead"].items():
        assert set(rows) == {"bare", "on", "off"}
        for variant, row in rows.items():
            _check_entry(
                f"overhead {family} {variant}",
                row,
                data["tools"][row["tool"]]["skipped"],
                ("rps_median", "rss_mib_per_worker", "pss_mib_total"),
            )


def test_scale_has_every_point(results: tuple[Path, dict[str, Any]]) -> None:
    _, data = results
    settings = data["meta"]["settings"]
    for axis, key, expected in (
        ("workers", "workers", settings["scale_workers"]),
        ("files", "project", settings["scale_projects"]),
    ):
        for tool, points in data["scale"][axis].items():
            assert [p[key] for p in points] == list(expected), f"{axis} {tool}"
            for point in points:
                _check_entry(
                    f"scale {axis} {tool} {point[key]}",
                    point,
                    data["tools"][tool]["skipped"],
                    ("latency_median_s", "idle_extra_core_pct", "modules"),
                )


def test_every_server_was_stopped(results: tuple[Path, dict[str, Any]]) -> None:
    _, data = results
    workdir = data["meta"]["workdir"]
    left = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if cwd.startswith(workdir):
            left.append(pid)
    assert not left, f"processes still running in {workdir}: {left}"
