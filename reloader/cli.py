"""`python -m reloader`: runserver's habit, on gunicorn.

Run in a Django project's directory, it finds the settings (from `--settings`,
DJANGO_SETTINGS_MODULE, or manage.py's `os.environ.setdefault(...)` line), and replaces itself
with gunicorn in warm mode (`-c python:reloader.gunicorn`) with development defaults. It execs
gunicorn rather than starting it as a child, so the pid the user started is the arbiter:
Ctrl-C, `kill -HUP` and a service manager keep their gunicorn meaning, and nothing sits in
between to forward signals or to outlive the server. Nothing here imports gunicorn.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import __version__
from .settings import APP
from .target import DJANGO

__all__ = ["Command", "build", "main", "parse_args", "settings_from_manage_py"]

DEFAULT_ADDR = "127.0.0.1"
DEFAULT_PORT = 8000
MAX_DEFAULT_WORKERS = 4
"""More workers than that restart more processes on every save for no gain in development."""
DEFAULT_THREADS = 4
WORKER_CLASSES = ("gthread", "sync", "gevent")
"""The worker classes reloader supports (eventlet is gone from gunicorn 24's extras)."""
TIMEOUT = 300
"""Generous, so a breakpoint in a view does not get its worker killed by the arbiter."""
LOGGER_CLASS = "reloader.accesslog.RunserverLogger"
PROG = "python -m reloader"

# runserver's own address syntax (django/core/management/commands/runserver.py): "8000",
# "0.0.0.0:8000", "[::1]:8000", "localhost:8000".
ADDRPORT_RE = re.compile(
    r"^(?:(?P<addr>\d{1,3}(?:\.\d{1,3}){3}|\[[a-fA-F0-9:]+\]"
    r"|[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*):)?(?P<port>\d+)$"
)


def default_workers() -> int:
    """The cores this process may run on, at most MAX_DEFAULT_WORKERS."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_DEFAULT_WORKERS))


def is_addrport(text: str) -> bool:
    return ADDRPORT_RE.match(text) is not None


def addrport(text: str) -> str:
    """runserver's `[addr:]port` as gunicorn's bind address `addr:port`."""
    match = ADDRPORT_RE.match(text)
    if match is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an address; accepted: PORT, IPv4:PORT, [IPv6]:PORT or HOST:PORT"
        )
    port = int(match["port"])
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} out of range; accepted: 1 to 65535")
    return f"{match['addr'] or DEFAULT_ADDR}:{port}"


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: accepted: a whole number, 1 or more")
    return value


def settings_from_manage_py(path: Path) -> str | None:
    """The settings module that manage.py's `os.environ.setdefault("DJANGO_SETTINGS_MODULE",
    "...")` names, or None. Read as source, never run: running it would run the project."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "setdefault"
        ):
            continue
        values = [a.value for a in node.args if isinstance(a, ast.Constant)]
        if len(values) == len(node.args) == 2 and values[0] == "DJANGO_SETTINGS_MODULE":
            return values[1] if isinstance(values[1], str) else None
    return None


def _parser(workers: int) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Serve a Django project (run it where manage.py is) or any WSGI "
        "application under gunicorn, reloading on save, like `manage.py runserver`. "
        "Arguments after `--` go to gunicorn as they are.",
        epilog="Examples: `python -m reloader`, `python -m reloader 8001`, "
        "`python -m reloader 0.0.0.0:8000 --settings mysite.settings`, "
        "`python -m reloader myapp:app`, `python -m reloader -- --log-level debug`.",
    )
    # Told apart by their form, so either may come alone, in either order.
    parser.add_argument(
        "first",
        nargs="?",
        metavar="APP",
        help="the WSGI application as 'package.module:attribute' (default: the Django project's)",
    )
    parser.add_argument(
        "second",
        nargs="?",
        metavar="ADDRPORT",
        help=f"'PORT' or 'ADDR:PORT' as for runserver (default {DEFAULT_ADDR}:{DEFAULT_PORT})",
    )
    parser.add_argument("-b", "--bind", type=addrport, help="ADDRPORT, as the positional one")
    parser.add_argument(
        "--settings", help="the Django settings module (default: DJANGO_SETTINGS_MODULE, or "
        "the one manage.py names)"
    )  # fmt: skip
    parser.add_argument(
        "-w", "--workers", type=positive, default=workers,
        help=f"worker processes (default: the cores, at most {MAX_DEFAULT_WORKERS}: {workers})",
    )  # fmt: skip
    parser.add_argument(
        "--threads", type=positive, help=f"threads per gthread worker (default {DEFAULT_THREADS})"
    )
    parser.add_argument(
        "-k", "--worker-class", choices=WORKER_CLASSES, default=WORKER_CLASSES[0],
        help="gunicorn's worker class (default %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--no-reload", action="store_true",
        help="plain gunicorn serving the application: no wrapper, no watching",
    )  # fmt: skip
    parser.add_argument(
        "--no-color", action="store_true", help="no colours in the access log (or set NO_COLOR)"
    )
    parser.add_argument("--version", action="version", version=f"reloader {__version__}")
    return parser


@dataclass(frozen=True)
class Command:
    """What to exec, with which environment, and what to tell the user first."""

    argv: list[str]
    env: dict[str, str]
    banner: list[str]


def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    """Our options, and gunicorn's (everything after the first `--`). Exits 2 on bad input."""
    ours, theirs = list(argv), []
    if "--" in ours:
        split = ours.index("--")
        ours, theirs = ours[:split], ours[split + 1 :]
    parser = _parser(default_workers())
    args = parser.parse_args(ours)
    app = None
    for text in filter(None, (args.first, args.second)):
        if is_addrport(text):
            if args.bind is not None:
                parser.error(f"two addresses: {text!r} and {args.bind!r}; give one")
            try:
                args.bind = addrport(text)
            except argparse.ArgumentTypeError as exc:
                parser.error(str(exc))
        elif app is None:
            try:
                app = APP.parse(text)
            except ValueError:
                parser.error(
                    f"{text!r} is neither an address (PORT or ADDR:PORT) nor an application "
                    f"({APP.accepts})"
                )
        else:
            parser.error(f"two applications: {app!r} and {text!r}; give one")
    args.app = app
    if args.threads is not None and args.worker_class != "gthread":
        parser.error(f"--threads needs --worker-class gthread, not {args.worker_class}")
    return args, theirs


def build(
    args: argparse.Namespace, gunicorn_args: Sequence[str], environ: Mapping[str, str], cwd: Path
) -> Command | str:
    """The gunicorn command for `args`, or why there is none (a message for the user)."""
    env = dict(environ)
    settings = args.settings or environ.get("DJANGO_SETTINGS_MODULE")
    manage_py = cwd / "manage.py"
    if settings is None and manage_py.is_file():
        settings = settings_from_manage_py(manage_py)
        if settings is None and args.app is None:
            return (
                f"{manage_py} names no settings (no os.environ.setdefault("
                "'DJANGO_SETTINGS_MODULE', ...) line): pass --settings"
            )
    if settings is None and args.app is None:
        return (
            f"no manage.py in {cwd}: run this in your Django project's directory, pass "
            f"--settings, or name the WSGI application ({APP.accepts})"
        )
    if settings is not None:
        env["DJANGO_SETTINGS_MODULE"] = settings
    if args.no_color:
        env["NO_COLOR"] = "1"
    bind = args.bind or f"{DEFAULT_ADDR}:{DEFAULT_PORT}"
    served = args.app or DJANGO
    argv = [sys.executable, "-m", "gunicorn"]
    if args.no_reload:
        mode = "no reloading"
    else:
        # reloader.gunicorn is a configuration module: wsgi_app (the wrapper) and the hooks.
        argv += ["-c", "python:reloader.gunicorn"]
        mode = "reloading on save (warm mode)"
        if args.app is not None:
            env[APP.env] = args.app
    argv += ["-b", bind, "-k", args.worker_class, "-w", str(args.workers)]
    shape = f"{args.workers} workers"
    if args.worker_class == "gthread":
        threads = args.threads or DEFAULT_THREADS
        argv += ["--threads", str(threads)]
        shape += f" x {threads} threads"
    argv += ["--timeout", str(TIMEOUT), "--access-logfile", "-", "--logger-class", LOGGER_CLASS]
    argv += list(gunicorn_args)
    if args.no_reload:
        argv.append(served)
    what = f"Django settings '{settings}'" if settings and not args.app else served
    host, _, port = bind.rpartition(":")
    banner = [
        f"reloader {__version__}: gunicorn, {args.worker_class}, {shape}, {mode}",
        f"Serving {what}",
        f"Starting development server at http://{host}:{port}/",
        "Quit the server with CONTROL-C.",
    ]
    return Command(argv=argv, env=env, banner=banner)


def main(argv: Sequence[str] | None = None) -> None:
    """Parse, then exec gunicorn; returns only by raising SystemExit on an error."""
    args, gunicorn_args = parse_args(sys.argv[1:] if argv is None else argv)
    if importlib.util.find_spec("gunicorn") is None:
        sys.exit(
            f"{PROG}: gunicorn is not installed in {sys.prefix}: "
            "pip install 'wsgi-reloader[gunicorn]'"
        )
    command = build(args, gunicorn_args, os.environ, Path.cwd())
    if isinstance(command, str):
        # As argparse reports a usage error: the user has to say more.
        print(f"{PROG}: error: {command}", file=sys.stderr)
        sys.exit(2)
    print("\n".join(command.banner), flush=True)
    os.execve(command.argv[0], command.argv, command.env)
