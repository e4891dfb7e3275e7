"""mod_wsgi-express end-to-end: deploy_examples/mod_wsgi-express/dev.wsgi started the way its
README says (2 processes x 4 threads, from the project directory), on a free port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import DEMO_SRC, DEMO_WARM
from servers import EXPRESS_EXAMPLE, Launcher
from support import assert_fresh_everywhere, get, lines_naming_pid, restart_lines, write


@pytest.fixture
def launch() -> Iterator[Launcher]:
    with Launcher() as launcher:
        yield launcher


def test_start_server_reloads_on_save(launch: Launcher) -> None:
    project = launch.copy(DEMO_SRC)
    script = launch.copy(EXPRESS_EXAMPLE) / "dev.wsgi"
    server = launch.mod_wsgi_express(
        script, "--processes", "2", "--threads", "4", cwd=project, ready="/version/"
    )
    server.warm(DEMO_WARM)
    old_pids = server.worker_pids()
    assert get(server.url("/version/")).body.startswith("v1 pid=")

    write(project / "pages" / "version.py", 'VERSION = "v2"\n')
    assert_fresh_everywhere(server, "/version/", "v2 pid=", DEMO_WARM)
    assert not set(server.worker_pids()) & set(old_pids)
    lines = restart_lines(server.log(), "version.py")
    for pid in old_pids:
        assert len(lines_naming_pid(lines, pid)) == 1, "\n".join(lines)
    assert "Shutdown timeout expired" not in server.log()
