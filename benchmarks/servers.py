"""The servers under test: how to start each over a project, and what their logs say.

A tool is a server plus a reloading strategy. Bare tools (no reloading) are the baselines that
idle cost is measured against, one per server family. `phases` are regexes for log lines that
mark the steps of one reload; the first match after a save gives that step's time.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .client import HOST
from .project import Project

BIN = Path(sys.executable).parent
MOD_WSGI_EXPRESS = BIN / "mod_wsgi-express"
UWSGI = BIN / "uwsgi"


@dataclass(frozen=True)
class Launch:
    project: Project
    port: int
    workers: int
    threads: int
    server_root: Path  # a fresh private directory (mod_wsgi-express writes its config there)
    apache_user: str | None  # who Apache runs as when we are root
    site: Path | None  # the snapshot of reloader, put first on sys.path


Command = Callable[[Launch], tuple[list[str], dict[str, str]]]


@dataclass(frozen=True)
class Tool:
    name: str
    label: str
    family: str  # gunicorn | runserver | mod_wsgi | uwsgi
    reloads: bool
    command: Command
    uses_reloader: bool = False
    single_process: bool = False  # serves from one process whatever `workers` says
    phases: dict[str, str] = field(default_factory=dict)

    @property
    def baseline(self) -> str:
        return BASELINES[self.family]


def _gunicorn(
    app: Callable[[Launch], str],
    *flags: str,
    env: Callable[[Launch], dict[str, str]] = lambda launch: {},
) -> Command:
    def command(launch: Launch) -> tuple[list[str], dict[str, str]]:
        argv = [
            sys.executable,
            "-m",
            "gunicorn",
            "-w",
            str(launch.workers),
            "--threads",
            str(launch.threads),
            "-b",
            f"{HOST}:{launch.port}",
            *flags,
            app(launch),
        ]
        return argv, env(launch)

    return command


def _runserver(*flags: str) -> Command:
    def command(launch: Launch) -> tuple[list[str], dict[str, str]]:
        # Threaded by default since Django 1.4; one process whatever the worker count.
        return [sys.executable, "manage.py", "runserver", *flags, f"{HOST}:{launch.port}"], {}

    return command


def _mod_wsgi(script: str, *flags: str) -> Command:
    def command(launch: Launch) -> tuple[list[str], dict[str, str]]:
        root = str(launch.project.root)
        argv = [
            str(MOD_WSGI_EXPRESS),
            "start-server",
            str(launch.project.root / script),
            "--host",
            HOST,
            "--port",
            str(launch.port),
            "--processes",
            str(launch.workers),
            "--threads",
            str(launch.threads),
            "--server-root",
            str(launch.server_root),
            "--working-directory",
            root,
            "--python-path",
            root,
            "--log-to-terminal",
            "--log-level",
            "info",
            "--locale",
            "C.UTF-8",
            *flags,
        ]
        if launch.site:
            argv += ["--python-path", str(launch.site)]
        if launch.apache_user:  # Apache refuses to serve as root (AH00526)
            argv += ["--user", launch.apache_user, "--group", launch.apache_user]
        return argv, {}

    return command


def _uwsgi(
    app: Callable[[Launch], str],
    *flags: str,
    env: Callable[[Launch], dict[str, str]] = lambda launch: {},
) -> Command:
    def command(launch: Launch) -> tuple[list[str], dict[str, str]]:
        argv = [
            str(UWSGI),
            "--master",
            "--processes",
            str(launch.workers),
            "--threads",
            str(launch.threads),
            "--http-socket",
            f"{HOST}:{launch.port}",
            "--die-on-term",  # SIGTERM would make uWSGI 2.0 reload, not stop
            "--need-app",
            "--module",
            app(launch),
            *flags,
        ]
        return argv, env(launch)

    return command


def _plain_app(launch: Launch) -> str:
    return launch.project.app


def _reloader_env(enabled: bool) -> Callable[[Launch], dict[str, str]]:
    def env(launch: Launch) -> dict[str, str]:
        return {"RELOADER_APP": launch.project.app, "RELOADER_ENABLED": "1" if enabled else "0"}

    return env


_GUNICORN_STEPS = {"exit": r"Worker exiting \(pid", "boot": r"Booting worker with pid"}
_MOD_WSGI_STEPS = {
    "exit": r"Exiting daemon process",
    # Apache's parent notices a dead daemon in its maintenance loop, up to a second later.
    "respawn": r"has died; deregistering and restarting",
    "boot": r"Starting daemon process",
}
_UWSGI_STEPS = {
    "exit": r"Gracefully killing worker|gracefully killing|buried after",
    "boot": r"Respawned uWSGI worker|spawned uWSGI worker",
}
# The warm mode replaces its Django tier instead when code the tier holds changed (models,
# settings), and re-executes its arbiter when code the arbiter imported changed.
_RELOADER_DETECT = {"detect": r"reloader.*(restarting|replacing the Django tier|re-executing)"}

TOOLS: dict[str, Tool] = {
    tool.name: tool
    for tool in [
        Tool(
            "reloader-gunicorn",
            "reloader + gunicorn",
            "gunicorn",
            True,
            _gunicorn(lambda launch: "reloader.wsgi:application", env=_reloader_env(True)),
            uses_reloader=True,
            phases={**_RELOADER_DETECT, **_GUNICORN_STEPS},
        ),
        Tool(
            "reloader-warm",
            "reloader warm mode + gunicorn",
            "gunicorn",
            True,
            _gunicorn(
                lambda launch: "reloader.wsgi:application",
                "-c",
                "python:reloader.gunicorn",
                env=_reloader_env(True),
            ),
            uses_reloader=True,
            phases={**_RELOADER_DETECT, **_GUNICORN_STEPS},
        ),
        Tool(
            "reloader-gunicorn-off",
            "reloader + gunicorn, RELOADER_ENABLED=0",
            "gunicorn",
            False,
            _gunicorn(lambda launch: "reloader.wsgi:application", env=_reloader_env(False)),
            uses_reloader=True,
        ),
        Tool(
            "gunicorn-reload",
            "gunicorn --reload",
            "gunicorn",
            True,
            _gunicorn(_plain_app, "--reload"),
            phases={"detect": r"Worker reloading", **_GUNICORN_STEPS},
        ),
        Tool("gunicorn", "gunicorn (bare)", "gunicorn", False, _gunicorn(_plain_app)),
        Tool(
            "runserver",
            "Django runserver",
            "runserver",
            True,
            _runserver(),
            single_process=True,
            phases={"detect": r"changed, reloading", "boot": r"Watching for file changes"},
        ),
        Tool(
            "runserver-noreload",
            "runserver --noreload",
            "runserver",
            False,
            _runserver("--noreload"),
            single_process=True,
        ),
        Tool(
            "mod_wsgi-reload",
            "mod_wsgi-express --reload-on-changes",
            "mod_wsgi",
            True,
            _mod_wsgi("bench_bare.wsgi", "--reload-on-changes"),
            phases={"detect": r"Change detected", **_MOD_WSGI_STEPS},
        ),
        Tool(
            "reloader-mod_wsgi",
            "reloader + mod_wsgi daemon",
            "mod_wsgi",
            True,
            _mod_wsgi("bench_reloader.wsgi"),
            uses_reloader=True,
            phases={**_RELOADER_DETECT, **_MOD_WSGI_STEPS},
        ),
        Tool(
            "reloader-mod_wsgi-off",
            "reloader + mod_wsgi, enabled=False",
            "mod_wsgi",
            False,
            _mod_wsgi("bench_reloader_off.wsgi"),
            uses_reloader=True,
        ),
        Tool(
            "mod_wsgi", "mod_wsgi-express (bare)", "mod_wsgi", False, _mod_wsgi("bench_bare.wsgi")
        ),
        Tool(
            "reloader-uwsgi",
            "reloader + uWSGI",
            "uwsgi",
            True,
            _uwsgi(lambda launch: "reloader.wsgi:application", env=_reloader_env(True)),
            uses_reloader=True,
            phases={**_RELOADER_DETECT, **_UWSGI_STEPS},
        ),
        Tool(
            "uwsgi-autoreload",
            "uWSGI --py-autoreload 1",
            "uwsgi",
            True,
            _uwsgi(_plain_app, "--py-autoreload", "1"),
            phases={"detect": r"uwsgi-python-reloader.*has been modified", **_UWSGI_STEPS},
        ),
        Tool("uwsgi", "uWSGI (bare)", "uwsgi", False, _uwsgi(_plain_app)),
    ]
}
BASELINES = {
    "gunicorn": "gunicorn",
    "runserver": "runserver-noreload",
    "mod_wsgi": "mod_wsgi",
    "uwsgi": "uwsgi",
}
# Throughput/memory variants per family: bare app, wrapped and reloading, wrapped but disabled.
OVERHEAD = {
    "gunicorn": {"bare": "gunicorn", "on": "reloader-gunicorn", "off": "reloader-gunicorn-off"},
    "mod_wsgi": {"bare": "mod_wsgi", "on": "reloader-mod_wsgi", "off": "reloader-mod_wsgi-off"},
}


def unavailable(tool: Tool, apache_problem: str | None) -> str | None:
    """Why `tool` cannot run here, or None."""
    if tool.uses_reloader and importlib.util.find_spec("reloader") is None:
        return "reloader is not importable in this interpreter (pip install -e .)"
    if tool.family == "gunicorn" and importlib.util.find_spec("gunicorn") is None:
        return "gunicorn is not installed"
    if tool.family == "uwsgi" and not UWSGI.exists():
        return f"uwsgi not found in {BIN} (pip install uwsgi)"
    if tool.family == "mod_wsgi":
        if not MOD_WSGI_EXPRESS.exists():
            return f"mod_wsgi-express not found in {BIN} (pip install mod_wsgi)"
        if apache_problem:
            return apache_problem
    return None


def environment(launch: Launch, extra: dict[str, str]) -> dict[str, str]:
    """A clean environment: no RELOADER_* from the caller, unbuffered output, a real locale."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RELOADER_", "WATCHFILES_"))}
    env.update(
        DJANGO_SETTINGS_MODULE=launch.project.settings,
        PYTHONPATH=os.pathsep.join(str(p) for p in (launch.site, launch.project.root) if p),
        PYTHONUNBUFFERED="1",  # log lines must reach us when written, to time the steps
        LANG="C.UTF-8",
        LC_ALL="C.UTF-8",
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    env.update(extra)
    return env


def wrk_path() -> str | None:
    return shutil.which("wrk")
