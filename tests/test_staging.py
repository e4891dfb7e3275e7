"""Staging end-to-end: nginx (deploy_examples/staging/nginx.conf) in front of gunicorn
(deploy_examples/staging/gunicorn.conf.py) on a unix socket, both as shipped but for the
listening port and the socket path. Clients only talk to nginx, so they must never see a
traceback; the error id on the page leads to it in gunicorn's log."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import DEMO_SRC, DEMO_WARM, StartGunicorn
from servers import STAGING_EXAMPLE, Launcher, substitute
from support import (
    answer_pid,
    assert_fresh_everywhere,
    edit,
    free_port,
    get,
    get_many,
    wait_for_body,
    write,
)

BROKEN = "ready-broken-on-purpose"
ERROR_PAGE = re.compile(r"Error id: ([0-9a-f]{8})\b")


@pytest.fixture
def launch() -> Iterator[Launcher]:
    with Launcher() as launcher:
        yield launcher


def test_nginx_gunicorn_stack_reloads_and_hides_error_details(launch: Launcher) -> None:
    project = launch.copy(DEMO_SRC)
    staging = launch.copy(STAGING_EXAMPLE)
    socket = launch.directory("run") / "gunicorn.sock"
    gunicorn = launch.gunicorn_unix(
        "-c", str(staging / "gunicorn.conf.py"), cwd=project, socket=socket, workers=2
    )
    port = free_port()
    source = staging / "nginx.conf"
    site = substitute(
        source.read_text(),
        {
            r"unix:/run/demo/gunicorn\.sock": f"unix:{socket}",
            r"listen 80;": f"listen 127.0.0.1:{port};",
        },
        str(source),
    )
    nginx = launch.nginx(site, port)
    # From here on the gunicorn server is addressed through nginx: its workers answer.
    gunicorn.base_url = nginx.base_url
    gunicorn.warm(DEMO_WARM)
    first = get(gunicorn.url("/version/"))
    assert first.body.startswith("v1 pid=") and answer_pid(first.body) in gunicorn.worker_pids()

    write(project / "pages" / "version.py", 'VERSION = "v2"\n')
    assert_fresh_everywhere(gunicorn, "/version/", "v2 pid=", DEMO_WARM)

    apps = project / "pages" / "apps.py"
    edit(apps, "        pass", f'        raise RuntimeError("{BROKEN}")')
    page = wait_for_body(gunicorn.url("/version/"), "Error id:", status=500)
    for resp in [page, *get_many(gunicorn.url("/version/"), 8, headers={"Accept": "text/html"})]:
        assert resp.status == 500
        # Not even a browser gets details through the proxy.
        assert resp.content_type.startswith("text/plain"), resp.headers
        for secret in (BROKEN, "RuntimeError", "Traceback", "apps.py", str(project)):
            assert secret not in resp.body, f"{secret!r} leaked through nginx:\n{resp.body}"
        match = ERROR_PAGE.search(resp.body)
        assert match, resp.body
        assert resp.headers.get("x-reloader-error-id") == match[1]
        log = gunicorn.wait_for_log(match[1])
        traceback = log[log.index(match[1]) :][:4000]
        assert BROKEN in traceback, f"no traceback logged with id {match[1]}:\n{traceback}"

    edit(apps, f'        raise RuntimeError("{BROKEN}")', "        pass")
    assert_fresh_everywhere(gunicorn, "/version/", "v2 pid=", DEMO_WARM)


def test_bare_proxy_pass_without_headers_still_hides_details(
    launch: Launcher, plain_server: StartGunicorn, plain_project: Path
) -> None:
    """nginx with nothing but `proxy_pass http://127.0.0.1:PORT` adds no proxy header and
    sends `Host: 127.0.0.1:PORT`; its HTTP/1.0 to the upstream is what gives it away."""
    (plain_project / "plainversion.py").write_text(f'VERSION = "{BROKEN}"\ndef broken(:\n')
    server = plain_server("gthread", warm=False)
    upstream = urllib.parse.urlsplit(server.url()).netloc
    port = free_port()
    site = f"""
server {{
    listen 127.0.0.1:{port};
    location / {{
        proxy_pass http://{upstream};
    }}
}}
"""
    nginx = launch.nginx(site, port, ready="/")
    direct = get(server.url("/"))
    assert "SyntaxError" in direct.body, "a local client should see the details"
    for headers in [{}, {"Host": "localhost"}, {"Accept": "text/html"}]:
        resp = get(nginx.url("/"), headers=headers)
        assert resp.status == 500
        assert "SyntaxError" not in resp.body and BROKEN not in resp.body, resp.body
        assert ERROR_PAGE.search(resp.body), resp.body
