"""`python -m reloader`'s decisions, without starting anything: the command it would exec."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from reloader import cli
from reloader.accesslog import colour_for, format_line

DEMO = Path(__file__).resolve().parents[2] / "deploy_examples" / "demo"


def _command(argv: list[str], cwd: Path = DEMO, **environ: str) -> cli.Command:
    args, theirs = cli.parse_args(argv)
    command = cli.build(args, theirs, environ, cwd)
    assert isinstance(command, cli.Command), command
    return command


def _option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


@pytest.mark.parametrize(
    ("given", "bind"),
    [
        ("8001", "127.0.0.1:8001"),
        ("0.0.0.0:8000", "0.0.0.0:8000"),
        ("[::1]:8000", "[::1]:8000"),
        ("localhost:9000", "localhost:9000"),
    ],
)
def test_addrport_as_runserver_takes_it(given: str, bind: str) -> None:
    command = _command([given])
    assert _option(command.argv, "-b") == bind
    host, _, port = bind.rpartition(":")
    assert f"Starting development server at http://{host}:{port}/" in command.banner


def test_django_project_in_warm_mode_with_development_defaults() -> None:
    command = _command([])
    argv = command.argv
    assert argv[:3] == [sys.executable, "-m", "gunicorn"]
    assert _option(argv, "-c") == "python:reloader.gunicorn"
    assert _option(argv, "-b") == "127.0.0.1:8000"
    assert _option(argv, "-k") == "gthread"
    assert _option(argv, "-w") == str(cli.default_workers())
    assert _option(argv, "--threads") == "4"
    assert _option(argv, "--logger-class") == cli.LOGGER_CLASS
    assert command.env["DJANGO_SETTINGS_MODULE"] == "demo.settings"  # from manage.py
    assert "RELOADER_APP" not in command.env
    assert "Serving Django settings 'demo.settings'" in command.banner


def test_default_workers_follow_the_cores_up_to_four() -> None:
    assert 1 <= cli.default_workers() <= cli.MAX_DEFAULT_WORKERS


def test_settings_option_wins_over_the_environment_and_manage_py() -> None:
    command = _command(["--settings", "other.settings"], DJANGO_SETTINGS_MODULE="env.settings")
    assert command.env["DJANGO_SETTINGS_MODULE"] == "other.settings"
    assert _command([], DJANGO_SETTINGS_MODULE="env.settings").env[
        "DJANGO_SETTINGS_MODULE"
    ] == "env.settings"  # fmt: skip


def test_an_application_import_string_needs_no_project(tmp_path: Path) -> None:
    command = _command(["plainapp:application", "8002"], cwd=tmp_path)
    assert command.env["RELOADER_APP"] == "plainapp:application"
    assert "DJANGO_SETTINGS_MODULE" not in command.env
    assert _option(command.argv, "-b") == "127.0.0.1:8002"


def test_no_reload_is_plain_gunicorn_serving_the_application() -> None:
    argv = _command(["--no-reload"]).argv
    assert "-c" not in argv
    assert argv[-1] == "django.core.wsgi:get_wsgi_application()"
    assert _command(["--no-reload", "plainapp:app"], cwd=DEMO).argv[-1] == "plainapp:app"


def test_gunicorn_options_after_double_dash_come_last() -> None:
    argv = _command(["8001", "--", "--log-level", "debug", "--timeout", "5"]).argv
    assert argv[-4:] == ["--log-level", "debug", "--timeout", "5"]
    assert _option(argv, "-b") == "127.0.0.1:8001"


def test_sync_workers_get_no_threads() -> None:
    argv = _command(["-k", "sync"]).argv
    assert "--threads" not in argv


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-k", "sync", "--threads", "2"], "--threads needs --worker-class gthread, not sync"),
        (["8000", "8001"], "two addresses: '8001' and '127.0.0.1:8000'; give one"),
        (["a:app", "b:app"], "two applications: 'a:app' and 'b:app'; give one"),
        (["--threads", "many"], "argument --threads: 'many': accepted: a whole number, 1 or more"),
        (["0"], "port 0 out of range; accepted: 1 to 65535"),
    ],
)
def test_bad_usage_exits_2_naming_what_is_accepted(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.parse_args(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_manage_py_is_read_not_run(tmp_path: Path) -> None:
    (tmp_path / "manage.py").write_text(
        "import os\nraise SystemExit('ran')\n"
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'site1.settings')\n"
    )
    assert cli.settings_from_manage_py(tmp_path / "manage.py") == "site1.settings"
    (tmp_path / "manage.py").write_text("print('no settings here')\n")
    assert cli.settings_from_manage_py(tmp_path / "manage.py") is None
    args, theirs = cli.parse_args([])
    message = cli.build(args, theirs, {}, tmp_path)
    assert isinstance(message, str) and "names no settings" in message and "--settings" in message


def test_runserver_access_line() -> None:
    when = time.strptime("2026-12-01 10:15:00", "%Y-%m-%d %H:%M:%S")
    line = format_line(when, "GET / HTTP/1.1", "200", "1234")
    assert line == '[01/Dec/2026 10:15:00] "GET / HTTP/1.1" 200 1234'
    assert format_line(when, "GET / HTTP/1.1", "200", "1234", colour=True) == line
    assert format_line(when, "GET /x HTTP/1.1", "404", "9", colour=True) == (
        '\x1b[33m[01/Dec/2026 10:15:00] "GET /x HTTP/1.1" 404 9\x1b[0m'
    )


@pytest.mark.parametrize(
    ("status", "code"),
    [(101, "1"), (200, ""), (302, "32"), (304, "36"), (404, "33"), (403, "31;1"), (502, "35;1")],
)
def test_colours_are_runservers(status: int, code: str) -> None:
    assert colour_for(status) == code


def test_import_reloader_imports_neither_gunicorn_nor_the_command() -> None:
    code = (
        "import sys, reloader, reloader.gunicorn;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('gunicorn', 'django')"
        " or m in ('reloader.cli', 'reloader.accesslog')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert out.stdout.strip() == "[]", out.stderr
