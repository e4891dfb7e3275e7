"""The servers under test: how to start each over a project, and what their logs say.

A tool is a server plus a reloading strategy. Bare tools (no reloading) are the baselines that
idle cost is measured against, one per server family. `phases` are regexes for log lines that
mark the steps of one reload; the first match after a save gives that step's time.
"""

from __future__ import annotations

import functools
import grp
import importlib.util
import os
import pwd
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .client import HOST
from .project import REPO, Project

BIN = Path(sys.executable).parent
MOD_WSGI_EXPRESS = BIN / "mod_wsgi-express"
UWSGI = BIN / "uwsgi"
APACHE_EXAMPLE = REPO / "deploy_examples" / "apache"


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
    family: str  # gunicorn | runserver | mod_wsgi (mod_wsgi-express) | apache | uwsgi
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


@dataclass(frozen=True)
class ApacheInstall:
    httpd: str  # the binary mod_wsgi was built for (apache2 on Debian)
    modules: str  # its module directory
    mod_wsgi_so: str  # mod_wsgi built into this venv


@functools.cache
def apache_install() -> ApacheInstall | str:
    """The Apache to run the shipped vhost with, or why there is none."""
    apxs = shutil.which("apxs") or shutil.which("apxs2")
    if apxs is None or not MOD_WSGI_EXPRESS.exists():
        return (
            "apxs or mod_wsgi-express not found (apt-get install apache2-dev; pip install mod_wsgi)"
        )

    def query(*argv: str) -> str:
        return subprocess.run(argv, check=True, capture_output=True, text=True).stdout.strip()

    httpd = Path(query(apxs, "-q", "SBINDIR")) / query(apxs, "-q", "TARGET")
    if not httpd.exists():
        return f"{httpd} (named by apxs) not found"
    return ApacheInstall(
        str(httpd), query(apxs, "-q", "LIBEXECDIR"), query(str(MOD_WSGI_EXPRESS), "module-location")
    )


def _replace_once(text: str, old: str, new: str) -> str:
    if text.count(old) != 1:  # the shipped file changed: say so rather than measure another
        raise ValueError(f"{APACHE_EXAMPLE / 'demo.conf'}: expected {old!r} once")
    return text.replace(old, new)


def _apache(script: str) -> Command:
    """Apache with deploy_examples/apache as shipped (standalone.conf including demo.conf),
    serving the project's `script` instead of dev.wsgi, with the run's processes, threads and
    port; its error log goes to stderr, whose lines time the steps of a reload."""

    def command(launch: Launch) -> tuple[list[str], dict[str, str]]:
        install = apache_install()
        assert isinstance(install, ApacheInstall), install  # unavailable() said so before
        root = launch.server_root
        root.mkdir(mode=0o755, parents=True, exist_ok=True)
        paths = [launch.site, launch.project.root] if launch.site else [launch.project.root]
        vhost = (APACHE_EXAMPLE / "demo.conf").read_text(encoding="utf-8")
        for old, new in {
            "Define DEMO_VENV /srv/demo/venv": f"Define DEMO_VENV {sys.prefix}",
            "Define DEMO_PROJECT /srv/demo/deploy_examples/demo": "Define DEMO_PROJECT "
            + ":".join(map(str, paths)),
            "Define DEMO_WSGI_DIR /srv/demo/deploy_examples/apache": "Define DEMO_WSGI_DIR "
            f"{launch.project.root}",
            "${DEMO_WSGI_DIR}/dev.wsgi": f"${{DEMO_WSGI_DIR}}/{script}",
            "<Files dev.wsgi>": f"<Files {script}>",
            "processes=2 threads=4": f"processes={launch.workers} threads={launch.threads}",
            "<VirtualHost *:80>": f"<VirtualHost *:{launch.port}>",
        }.items():
            vhost = _replace_once(vhost, old, new)
        (root / "vhost.conf").write_text(vhost, encoding="utf-8")
        top = root / "httpd.conf"
        top.write_text(f"Include {APACHE_EXAMPLE / 'standalone.conf'}\nErrorLog /dev/stderr\n")
        user = launch.apache_user or pwd.getpwuid(os.geteuid()).pw_name
        env = {
            "DEMO_SERVER_ROOT": str(root),
            "DEMO_PORT": str(launch.port),
            "DEMO_MODULES": install.modules,
            "DEMO_MOD_WSGI": install.mod_wsgi_so,
            "DEMO_RUN_USER": user,
            "DEMO_RUN_GROUP": grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name,
            "DEMO_VHOST": str(root / "vhost.conf"),
        }
        return [install.httpd, "-f", str(top), "-DFOREGROUND"], env

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
    "stop": r"Shutdown requested for daemon process",
    # Logged after the interpreter's teardown: a process that skips it never says it.
    "exit": r"Exiting daemon process",
    # Apache's parent notices a dead daemon in its maintenance loop, up to a second later.
    "respawn": r"has died; deregistering and restarting",
    "boot": r"Starting daemon process",
    # At the daemon's start where the script is preloaded, else on its first request.
    "load": r"Loading WSGI script",
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
            "reloader-apache",
            "reloader + Apache vhost",
            "apache",
            True,
            _apache("bench_reloader.wsgi"),
            uses_reloader=True,
            phases={**_RELOADER_DETECT, **_MOD_WSGI_STEPS},
        ),
        Tool("apache", "Apache vhost (bare)", "apache", False, _apache("bench_bare.wsgi")),
        Tool(
            "reloader-mod_wsgi",
            "reloader + mod_wsgi-express",
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
        Tool(  # measured by `benchmarks.against`, not in the main table
            "reloader-uwsgi-lazy",
            "reloader + uWSGI --lazy-apps",
            "uwsgi",
            True,
            _uwsgi(
                lambda launch: "reloader.wsgi:application", "--lazy-apps", env=_reloader_env(True)
            ),
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
APACHE_FAMILIES = ("mod_wsgi", "apache")  # run by Apache, as its unprivileged user when root
BASELINES = {
    "gunicorn": "gunicorn",
    "runserver": "runserver-noreload",
    "mod_wsgi": "mod_wsgi",
    "apache": "apache",
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
    if tool.family in APACHE_FAMILIES:
        if not MOD_WSGI_EXPRESS.exists():
            return f"mod_wsgi-express not found in {BIN} (pip install mod_wsgi)"
        if apache_problem:
            return apache_problem
        if tool.family == "apache" and isinstance(found := apache_install(), str):
            return found
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
