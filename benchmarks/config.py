"""How big a run is: the full profile, and the quick one that runs every measurement once."""

from __future__ import annotations

from dataclasses import dataclass

# Tools compared in the main table; the scale study covers the two gunicorn reloaders.
MAIN_TOOLS = (
    "reloader-gunicorn",
    "reloader-warm",
    "gunicorn-reload",
    "runserver",
    "mod_wsgi-reload",
    "reloader-mod_wsgi",
    "reloader-apache",
    "reloader-uwsgi",
    "uwsgi-autoreload",
)
SCALE_TOOLS = ("reloader-gunicorn", "reloader-warm", "gunicorn-reload")
# Edits of the models module too: the warm mode's arbiter holds the models, so such an edit
# costs it more than a view edit; its target is to be no slower there than gunicorn --reload.
MODELS_TOOLS = ("reloader-gunicorn", "reloader-warm", "gunicorn-reload")
# The real-project section: a Wagtail site's view, models, settings and ready()-imported
# edits, and the demo whose ready() imports its views, in each gunicorn reloading mode.
REAL_TOOLS = ("reloader-gunicorn", "reloader-warm", "gunicorn-reload")
# The browser section: the tools Django developers pair with django-browser-reload today.
BROWSER_TOOLS = ("reloader-gunicorn", "reloader-warm", "gunicorn-reload", "runserver")
BROWSER_REFERENCE = "runserver"  # what django-browser-reload users run without this package
REFERENCE = "gunicorn-reload"  # ratios are to the reloader a user of that server has today


@dataclass(frozen=True)
class ProjectSize:
    modules: int  # generated modules on top of the demo (Django + admin is ~600 module files)
    per_dir: int


@dataclass(frozen=True)
class Settings:
    quick: bool
    workers: int
    threads: int
    edits: int  # saves per latency measurement in the main table
    scale_edits: int  # saves per latency measurement in the scale study
    models_edits: int  # saves of pages/models.py per models measurement
    lost_reloads: int  # saves under steady load
    browser_edits: int  # saves per kind (view, template, view with two tabs) in a browser tab
    real_edits: int  # saves per kind of edit per tool in the real-project section
    real_tools: tuple[str, ...]
    # Start the Wagtail site's `migrate` (~20 s of CPU) when the run starts, beside the first
    # servers: only where timings are not published.
    generate_early: bool
    browser_tools: tuple[str, ...]
    browser_timeout: float  # give up on one repaint after this long (over gunicorn's 30 s
    # graceful timeout: an open event stream may hold a stopping worker that long)
    idle_seconds: float
    # The main table's idle CPU on the large project for every tool; else only for the scale
    # study's tools, whose servers there the study starts anyway.
    idle_large_all: bool
    # Quiet time before the idle period, measured apart: a watcher's first scans after a
    # start (every file stat-ed, directories added) are a one-off burst, not idle cost.
    startup_burst_seconds: float
    # Pause after a reload (or start) so the server is quiet again. Over 1 s: gunicorn --reload
    # first sees a lazily imported file up to 1 s after the import, and misses a save before.
    settle_seconds: float
    # Plus a random 0..jitter s: the peers poll once a second, and saves at a fixed delay
    # after a restart would hit the same phase of their poll every time (biased latencies).
    jitter_seconds: float
    edit_timeout: float  # give up on one save after this long
    quiet_seconds: float  # an edit is over once every worker is fresh and no stale answer came
    pollers: int
    poll_interval: float
    load_threads: int
    load_interval: float
    wrk_warmup_seconds: int  # a discarded first run: the first requests fill Django's caches
    wrk_seconds: int
    wrk_runs: int
    projects: dict[str, ProjectSize]  # "demo" must be first: the main table uses it
    large: str  # the project idle cost is also reported for
    scale_workers: tuple[int, ...]
    scale_projects: tuple[str, ...]
    busy_seconds: float = 4.0  # the request in flight at each save of `benchmarks.busy`


FULL = Settings(
    quick=False,
    workers=2,
    threads=4,
    edits=12,
    scale_edits=10,
    models_edits=8,
    lost_reloads=5,
    browser_edits=10,
    real_edits=6,  # 6 x 4 kinds x 3 tools, ~5 s a save: the section runs in ~8 minutes
    real_tools=REAL_TOOLS,
    generate_early=False,
    browser_tools=BROWSER_TOOLS,
    browser_timeout=45.0,
    idle_seconds=10.0,
    idle_large_all=True,
    startup_burst_seconds=10.0,
    settle_seconds=1.5,
    jitter_seconds=1.0,
    edit_timeout=30.0,
    quiet_seconds=0.5,
    pollers=4,
    poll_interval=0.008,
    load_threads=4,
    load_interval=0.02,
    wrk_warmup_seconds=2,
    wrk_seconds=3,
    wrk_runs=5,
    projects={
        "demo": ProjectSize(0, 20),
        "large": ProjectSize(2400, 20),  # ~3,000 module files with Django, in 120 dirs
        "xlarge": ProjectSize(9400, 20),  # ~10,000 module files, in 470 dirs
    },
    large="large",
    scale_workers=(1, 2, 4, 8),
    scale_projects=("demo", "large", "xlarge"),
)

QUICK = Settings(
    quick=True,
    workers=2,
    threads=4,
    edits=1,
    scale_edits=1,
    models_edits=1,
    lost_reloads=1,
    browser_edits=1,
    # Warm mode alone: the one whose path differs by kind of edit (restart or re-exec).
    real_tools=("reloader-warm",),
    real_edits=1,
    generate_early=True,
    browser_tools=("reloader-warm", "runserver"),  # a quick test runs this: two tools only
    browser_timeout=45.0,
    idle_seconds=0.25,  # 18 quiet periods, each a test's wait: shapes, not figures
    idle_large_all=False,  # 10 servers fewer: the quiet period's code is the demo's
    startup_burst_seconds=0.25,
    settle_seconds=1.0,  # saves stay more than a second apart: never one burst
    jitter_seconds=0.0,  # one save per measurement: nothing to spread over the second
    edit_timeout=10.0,
    quiet_seconds=0.3,
    pollers=4,
    poll_interval=0.008,
    load_threads=3,
    load_interval=0.02,
    wrk_warmup_seconds=0,
    wrk_seconds=1,
    wrk_runs=1,
    projects={"demo": ProjectSize(0, 20), "large": ProjectSize(400, 20)},
    large="large",
    scale_workers=(2,),  # the main table's servers: a scale of one point, no server of its own
    scale_projects=("demo", "large"),
)
