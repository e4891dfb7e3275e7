"""Warm mode: `gunicorn -c python:reloader.gunicorn`. One watcher process for the server,
workers forked warm (from the Django tier once the project loaded), a new tier when what it
holds changes, a re-exec of the arbiter when what the arbiter imported changes."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from conftest import DEMO_ENV, DEMO_WARM, GUNICORN_CONF, StartGunicorn
from support import (
    PreforkServer,
    assert_fresh_everywhere,
    assert_refreshes_never_go_back,
    edit,
    every_worker_serves,
    get,
    group_zombies,
    inotify_fds,
    restart_lines,
    wait_for_body,
    wait_until,
    write,
)

pytestmark = pytest.mark.gunicorn

SUPERVISOR = "reloader.warm"


def _start(gunicorn: StartGunicorn, project: Path, *args: str, **env: str) -> PreforkServer:
    return gunicorn(
        *args,
        cwd=project,
        env={**DEMO_ENV, **env},
        warm=DEMO_WARM,
        workers=2,
        helpers=(SUPERVISOR,),
    )


@pytest.fixture
def warm_server(gunicorn: StartGunicorn, demo_project: Path) -> PreforkServer:
    return _start(gunicorn, demo_project, "-c", "python:reloader.gunicorn", "-w", "2",
                  "--threads", "4")  # fmt: skip


def test_one_watcher_for_the_server_and_every_worker_fresh(
    warm_server: PreforkServer, demo_project: Path
) -> None:
    server = warm_server
    (supervisor,) = server.helper_pids()
    # Its monitor is replaced, for a moment without watches, whenever a report adds files.
    wait_until(lambda: inotify_fds(supervisor) >= 1, message="the supervisor to use inotify")
    old = server.worker_pids()
    assert [inotify_fds(pid) for pid in old] == [0, 0], "workers must not watch themselves"

    for version in ("v2", "v3"):
        write(demo_project / "pages" / "version.py", f'VERSION = "{version}"\n')
        assert_fresh_everywhere(server, "/version/", f"{version} pid=", DEMO_WARM)
    assert not set(server.worker_pids()) & set(old)
    assert server.helper_pids() == [supervisor], "the watcher outlives worker restarts"
    lines = restart_lines(server.log(), "version.py")
    assert lines and all(f"[{supervisor}]" in line for line in lines), lines


def test_template_edit_refreshes_every_worker_without_restart(
    warm_server: PreforkServer, demo_project: Path
) -> None:
    server = warm_server
    pids = server.worker_pids()
    server.warm("/hello/")
    template = demo_project / "pages/templates/pages/hello.html"
    # The supervisor signals each worker in turn; none answers with the old template once
    # another answered with the new.
    assert_refreshes_never_go_back(server.url("/hello/"), template)
    assert server.warm("/hello/") == set(pids)
    assert server.worker_pids() == pids
    assert not restart_lines(server.log())


def test_broken_import_shows_the_error_and_recovers(
    warm_server: PreforkServer, demo_project: Path
) -> None:
    server = warm_server
    version = demo_project / "pages" / "version.py"
    write(version, "VERSION = (\n")
    page = wait_for_body(server.url("/version/"), "SyntaxError", status=500)
    assert "version.py" in page.body
    server.check_alive()
    write(version, 'VERSION = "v4"\n')
    # No error page after the first fresh answer, even from a worker that was starting (on
    # the broken file) when the fix was saved.
    assert_fresh_everywhere(server, "/version/", "v4 pid=", DEMO_WARM)


def test_config_edit_reexecs_the_arbiter_in_place(
    gunicorn: StartGunicorn, demo_project: Path
) -> None:
    config = demo_project / "gunicorn_warm.py"
    config.write_text("from reloader.gunicorn import *  # noqa: F403\n\nworkers = 2\nthreads = 4\n")
    server = _start(gunicorn, demo_project, "-c", str(config))
    arbiter, old = server.pid, server.worker_pids()
    config.write_text(config.read_text() + "timeout = 120\n")
    server.wait_for_log("re-executing the arbiter")
    wait_until(
        lambda: (pids := server.worker_pids()) and len(pids) == 2 and not set(pids) & set(old),
        message=lambda: f"fresh workers of the re-executed arbiter:\n{server.log_tail()}",
    )
    assert server.pid == arbiter and server.poll() is None
    write(demo_project / "pages" / "version.py", 'VERSION = "v5"\n')
    assert_fresh_everywhere(server, "/version/", "v5 pid=", DEMO_WARM)
    assert len(server.helper_pids()) == 1, "one watcher after the re-exec, not two"
    # The old image's supervisor, tier and workers are reaped: no zombie.
    wait_until(
        lambda: not group_zombies(server.pid), message=lambda: f"{group_zombies(server.pid)}"
    )
    assert len(server.tier_pids()) <= 1


def test_the_application_named_on_the_command_line_is_reloaded(
    gunicorn: StartGunicorn, demo_project: Path
) -> None:
    """The usual gunicorn habit, the application after the options, instead of RELOADER_APP."""
    env = {k: v for k, v in DEMO_ENV.items() if k != "RELOADER_APP"}
    server = gunicorn(
        "-c", "python:reloader.gunicorn", "-w", "2", "--threads", "4", DEMO_ENV["RELOADER_APP"],
        cwd=demo_project, env=env, warm=DEMO_WARM, workers=2, helpers=(SUPERVISOR,),
    )  # fmt: skip
    write(demo_project / "pages" / "version.py", 'VERSION = "v2"\n')
    assert_fresh_everywhere(server, "/version/", "v2 pid=", DEMO_WARM)
    assert restart_lines(server.log(), "version.py")


def test_disabled_means_no_watcher_process(gunicorn: StartGunicorn, demo_project: Path) -> None:
    server = _start(gunicorn, demo_project, "-c", "python:reloader.gunicorn", "-w", "2",
                    RELOADER_ENABLED="0")  # fmt: skip
    assert server.helper_pids() == []
    assert get(server.url("/version/")).body.startswith("v1 pid=")


def test_shipped_warm_config(gunicorn: StartGunicorn, demo_project: Path) -> None:
    """deploy_examples/gunicorn/gunicorn.warm.conf.py as shipped; only bind and chdir change."""
    config = GUNICORN_CONF.with_name("gunicorn.warm.conf.py")
    server = gunicorn(
        "-c", str(config), cwd=demo_project, warm=DEMO_WARM, workers=4, helpers=(SUPERVISOR,)
    )
    assert len(server.helper_pids()) == 1
    write(demo_project / "pages" / "version.py", 'VERSION = "v2"\n')
    assert_fresh_everywhere(server, "/version/", "v2 pid=", DEMO_WARM)


SET_UP = "Django set up in the tier process"
REEXEC = "re-executing the arbiter"


def test_arbiter_warms_up_before_the_first_restart(warm_server: PreforkServer) -> None:
    """As soon as the workers reported what they imported, while it idles: so even the first
    save after a start forks warm workers."""
    warm_server.wait_for_log(SET_UP)
    assert not restart_lines(warm_server.log())
    assert set(warm_server.worker_pids()) == warm_server.warm(DEMO_WARM)


def test_models_edit_replaces_the_tier_which_forks_warm_again(
    warm_server: PreforkServer, demo_project: Path
) -> None:
    server = warm_server
    arbiter = server.pid
    write(demo_project / "pages" / "version.py", 'VERSION = "v2"\n')
    assert_fresh_everywhere(server, "/version/", "v2 pid=", DEMO_WARM)
    server.wait_for_log(SET_UP)  # the restart taught the arbiter the project
    (tier,) = server.tier_pids()

    edit(demo_project / "pages" / "models.py", '"m1"', '"m2"')
    assert_fresh_everywhere(server, "/models-version/", "m2 pid=", None)
    every_worker_serves(server, "/models-version/", "m2 pid=")
    log = server.log()
    assert "replacing the Django tier: changed pages/models.py" in log
    assert f"replacing the Django tier (process {tier})" in log
    # The same arbiter, never re-executed: gunicorn started listening once.
    assert server.pid == arbiter and server.poll() is None
    assert REEXEC not in log and log.count("Listening at") == 1
    # The new tier set Django up again before its first fork.
    assert log.count(SET_UP) == 2, server.log_tail()
    (new_tier,) = server.tier_pids()
    assert new_tier != tier

    # A view is still the workers' alone: the tier stays.
    write(demo_project / "pages" / "version.py", 'VERSION = "v3"\n')
    assert_fresh_everywhere(server, "/version/", "v3 pid=", DEMO_WARM)
    assert server.log().count("replacing the Django tier (") == 1
    assert server.tier_pids() == [new_tier] and len(server.helper_pids()) == 1

    # kill -HUP: gunicorn re-reads its configuration and starts new workers, from a new
    # tier forked with that configuration.
    workers = set(server.worker_pids())
    os.kill(arbiter, signal.SIGHUP)
    server.wait_for_log("gunicorn reloaded its configuration")
    wait_until(
        lambda: len(pids := server.worker_pids()) == 2 and not set(pids) & workers,
        message=lambda: f"new workers after HUP:\n{server.log_tail()}",
    )
    every_worker_serves(server, "/models-version/", "m2 pid=")
    assert len(server.tier_pids()) == 1 and server.tier_pids() != [new_tier]
    assert server.pid == arbiter and REEXEC not in server.log()


def test_broken_models_edit_shows_the_error_and_recovers(
    warm_server: PreforkServer, demo_project: Path
) -> None:
    server = warm_server
    write(demo_project / "pages" / "version.py", 'VERSION = "v2"\n')
    assert_fresh_everywhere(server, "/version/", "v2 pid=", DEMO_WARM)
    server.wait_for_log(SET_UP)
    models = demo_project / "pages" / "models.py"
    good = models.read_text()

    write(models, good.replace('VERSION = "m1"', "VERSION = (\n"))
    page = wait_for_body(server.url("/version/"), "SyntaxError", status=500)
    assert "models.py" in page.body
    server.check_alive()
    write(models, good.replace('"m1"', '"m3"'))
    wait_for_body(server.url("/models-version/"), "m3 pid=", status=200)
    every_worker_serves(server, "/models-version/", "m3 pid=")
    # Once the workers load again, a new tier sets Django up: the next restart is warm.
    wait_until(lambda: server.log().count(SET_UP) == 2, message=server.log_tail)
    write(demo_project / "pages" / "version.py", 'VERSION = "v4"\n')
    assert_fresh_everywhere(server, "/models-version/", "m3 pid=", None)
    assert_fresh_everywhere(server, "/version/", "v4 pid=", DEMO_WARM)
    assert REEXEC not in server.log()


THREAD_IN_READY = """
import threading

from django.apps import AppConfig


class PagesConfig(AppConfig):
    name = "pages"

    def ready(self) -> None:
        threading.Thread(target=threading.Event().wait, daemon=True).start()
"""


def test_setup_that_starts_a_thread_is_left_to_the_workers(
    gunicorn: StartGunicorn, demo_project: Path
) -> None:
    (demo_project / "pages" / "apps.py").write_text(THREAD_IN_READY)
    server = _start(gunicorn, demo_project, "-c", "python:reloader.gunicorn", "-w", "2",
                    "--threads", "4")  # fmt: skip
    write(demo_project / "pages" / "version.py", 'VERSION = "v2"\n')
    server.wait_for_log("starts a thread: leaving it to the workers")
    assert_fresh_everywhere(server, "/version/", "v2 pid=", DEMO_WARM)
    # Without the tier, models are the workers' again: an edit restarts only them.
    edit(demo_project / "pages" / "models.py", '"m1"', '"m2"')
    every_worker_serves(server, "/models-version/", "m2 pid=")
    assert restart_lines(server.log(), "models.py")
    # The arbiter held no settings: nothing to start afresh.
    assert REEXEC not in server.log() and server.log().count("Listening at") == 1
    assert SET_UP not in server.log() and not server.tier_pids()


def test_django_tier_switched_off(gunicorn: StartGunicorn, demo_project: Path) -> None:
    server = _start(gunicorn, demo_project, "-c", "python:reloader.gunicorn", "-w", "2",
                    RELOADER_WARM_DJANGO="0")  # fmt: skip
    for version in ("v2", "v3"):
        write(demo_project / "pages" / "version.py", f'VERSION = "{version}"\n')
        assert_fresh_everywhere(server, "/version/", f"{version} pid=", DEMO_WARM)
    edit(demo_project / "pages" / "models.py", '"m1"', '"m2"')
    every_worker_serves(server, "/models-version/", "m2 pid=")
    assert restart_lines(server.log(), "models.py")
    assert REEXEC not in server.log()
    assert SET_UP not in server.log()


def test_bad_warm_django_value_stops_the_server(
    gunicorn: StartGunicorn, demo_project: Path
) -> None:
    server = gunicorn("-c", "python:reloader.gunicorn", cwd=demo_project, ready=None,
                      env={**DEMO_ENV, "RELOADER_WARM_DJANGO": "sometimes"})  # fmt: skip
    assert server.wait_exit() != 0
    log = server.log()
    assert "RELOADER_WARM_DJANGO='sometimes'" in log
    assert "0/false/no/off" in log
