"""Checks of the test harness itself, against gunicorn *without* the reloader.

They prove the end-to-end tests can see what they claim to see: that a bare server really
keeps print() output buffered in a pipe, that the harness leaves no process behind, that
the fixtures are what the other tests assume.
"""

from __future__ import annotations

import gettext
import sys
import uuid
from pathlib import Path

import pytest
from conftest import StartGunicorn
from support import (
    QUIET_PERIOD,
    Server,
    answer_pid,
    get,
    group_members,
    wait_until,
    write_mo,
)

pytestmark = pytest.mark.gunicorn

DJANGO_ENV = {"DJANGO_SETTINGS_MODULE": "demo.settings"}


def test_bare_gunicorn_serves_demo_and_stops_cleanly(
    gunicorn: StartGunicorn, demo_project: Path
) -> None:
    server = gunicorn(
        "-w", "2", "-k", "gthread", "--threads", "4", "demo.wsgi:application",
        cwd=demo_project, env=DJANGO_ENV, warm="/slow/?s=0.3",
    )  # fmt: skip
    resp = get(server.url("/version/"))
    assert resp.status == 200
    assert resp.body.startswith("v1 pid=")
    assert answer_pid(resp.body) in server.worker_pids()
    assert get(server.url("/admin/login/")).status == 200
    assert server.stop(), "gunicorn needed SIGKILL"
    assert group_members(server.pid) == []


def test_bare_gunicorn_keeps_print_in_the_pipe(gunicorn: StartGunicorn, demo_project: Path) -> None:
    """Without the reloader, print() to a piped stdout stays buffered: the print test
    of the reloader is therefore meaningful."""
    server = gunicorn("-w", "1", "demo.wsgi:application", cwd=demo_project, env=DJANGO_ENV)
    token = uuid.uuid4().hex
    assert get(server.url(f"/print/?t={token}")).body == "ok"
    with pytest.raises(AssertionError):
        wait_until(lambda: token in server.log(), timeout=QUIET_PERIOD)
    server.stop()
    assert token in server.log(), "buffered output should be flushed at exit"


def test_server_kills_what_ignores_sigterm(tmp_path: Path) -> None:
    script = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(600)"
    )
    server = Server(
        argv=[sys.executable, "-c", script], log_path=tmp_path / "log", cwd=tmp_path
    ).start()
    server.wait_for_log("ready", timeout=30)
    assert server.stop(graceful_timeout=1, must_end=False) is False
    assert group_members(server.pid) == []


def test_write_mo_is_readable_by_gettext(tmp_path: Path) -> None:
    path = tmp_path / "django.mo"
    write_mo(path, {"Hello from the demo": "Bonjour", "é": "è"})
    with open(path, "rb") as fh:
        catalog = gettext.GNUTranslations(fh)
    assert catalog.gettext("Hello from the demo") == "Bonjour"
    assert catalog.gettext("é") == "è"
    assert catalog.gettext("missing") == "missing"
