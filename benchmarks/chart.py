"""A PNG for the README: latency and idle cost per tool, and how both scale."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI

import matplotlib.pyplot as plt

from .config import MAIN_TOOLS, SCALE_TOOLS
from .servers import TOOLS


def _ok(entry: dict[str, Any]) -> bool:
    return entry.get("status") == "ok"


def _latency_bars(
    ax: Any, entries: dict[str, Any], xs: list[float], width: float, label: str, color: str
) -> None:
    medians = [e["median_s"] or 0 for e in entries.values()]
    p90 = [max(0.0, (e["p90_s"] or 0) - m) for e, m in zip(entries.values(), medians, strict=True)]
    yerr = [[0] * len(medians), p90]
    ax.bar(xs, medians, width, yerr=yerr, capsize=4, color=color, label=label)


def _bars_latency(ax: Any, data: dict[str, Any]) -> None:
    """Per tool: after a view edit, and beside it after a models edit where that was measured."""
    # A results file from before a tool existed has no entry for it.
    tools = [t for t in MAIN_TOOLS if _ok(data["latency"].get(t, {}))]
    models = {t: e for t, e in data.get("models", {}).items() if _ok(e) and t in tools}
    shift, width = (0.2, 0.4) if models else (0.0, 0.8)
    views = {t: data["latency"][t] for t in tools}
    xs = [x - shift for x in range(len(tools))]
    _latency_bars(ax, views, xs, width, "edit of pages/version.py", "tab:blue")
    if models:
        xs = [tools.index(t) + shift for t in models]
        _latency_bars(ax, models, xs, width, "edit of pages/models.py", "tab:orange")
        ax.legend(fontsize=8)
    ax.set_xticks(
        range(len(tools)), [TOOLS[t].label for t in tools], rotation=20, ha="right", fontsize=8
    )
    ax.set_ylabel("seconds")
    ax.set_title("Save → fresh response (median, whisker p90)")


_BROWSER_BARS = (
    ("view", "view edit", "tab:blue"),
    ("template", "template edit", "tab:green"),
    ("view_two_tabs", "view edit, two tabs", "tab:purple"),
)


def _bars_browser(ax: Any, data: dict[str, Any]) -> None:
    """Per tool: save → repainted tab, for each kind of edit."""
    tools = [t for t, e in data.get("browser", {}).items() if _ok(e)]
    width = 0.8 / len(_BROWSER_BARS)
    for i, (kind, label, color) in enumerate(_BROWSER_BARS):
        entries = {t: data["browser"][t][kind] for t in tools}
        xs = [x + (i - 1) * width for x in range(len(tools))]
        _latency_bars(ax, entries, xs, width, label, color)
    ax.set_xticks(
        range(len(tools)), [TOOLS[t].label for t in tools], rotation=20, ha="right", fontsize=8
    )
    ax.set_ylabel("seconds")
    ax.set_title("Save → browser tab repainted (median, whisker p90)")
    if tools:
        ax.legend(fontsize=8)


def _bars_idle(ax: Any, data: dict[str, Any]) -> None:
    projects = list(data["idle"])
    tools = [t for t in MAIN_TOOLS if any(t in data["idle"][p] for p in projects)]
    width = 0.8 / len(projects)
    for i, project in enumerate(projects):
        entries = data["idle"][project]
        values = [
            entries[t].get("extra_core_pct", 0) if _ok(entries.get(t, {})) else 0 for t in tools
        ]
        ax.bar([x + i * width for x in range(len(tools))], values, width, label=project)
    ax.set_xticks(
        [x + 0.4 - width / 2 for x in range(len(tools))],
        [TOOLS[t].label for t in tools],
        rotation=20,
        ha="right",
        fontsize=8,
    )
    ax.set_ylabel("% of one core")
    ax.set_title("Idle CPU above the same server without reloading")
    ax.legend(fontsize=8)


def _lines(
    ax: Any, points: dict[str, list[dict[str, Any]]], x: str, y: str, title: str, ylabel: str
) -> None:
    for tool in SCALE_TOOLS:
        good = [p for p in points[tool] if _ok(p)]
        ax.plot([p[x] for p in good], [p[y] for p in good], marker="o", label=TOOLS[tool].label)
    ticks = sorted({p[x] for tool in SCALE_TOOLS for p in points[tool] if _ok(p)})
    ax.set_xticks(ticks)
    ax.set_ylim(bottom=0)
    ax.set_title(title)
    ax.set_xlabel(x)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)


def draw(data: dict[str, Any], path: Path) -> None:
    """Top row: latency; bottom row: idle cost. Left: per tool; then vs workers, vs files;
    right, top: the browser section."""
    fig, axes = plt.subplots(2, 4, figsize=(20, 8.5))
    _bars_latency(axes[0][0], data)
    _bars_idle(axes[1][0], data)
    _bars_browser(axes[0][3], data)
    axes[1][3].axis("off")
    scale = data["scale"]
    for col, (axis, x, what) in enumerate(
        [
            ("workers", "workers", "gunicorn workers"),
            ("files", "modules", "module files per worker"),
        ]
    ):
        _lines(
            axes[0][col + 1],
            scale[axis],
            x,
            "latency_median_s",
            f"Save → fresh vs {what}",
            "seconds",
        )
        _lines(
            axes[1][col + 1],
            scale[axis],
            x,
            "idle_extra_core_pct",
            f"Idle CPU vs {what}",
            "% of one core",
        )
    mode = "quick" if data["meta"]["quick"] else "full"
    fig.suptitle(f"reloader benchmarks ({mode} run, {data['meta']['finished']})")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
