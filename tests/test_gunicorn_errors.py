"""gunicorn end-to-end: broken saves keep the server up, show (or hide) the error, and the
next fixing save brings the application back; bad configuration fails at startup."""

from __future__ import annotations

import re
import socket
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import StartGunicorn
from support import (
    ERROR_ID_RE,
    PreforkServer,
    Response,
    assert_fresh_everywhere,
    get,
    restart_lines,
    wait_until,
    write,
)

pytestmark = pytest.mark.gunicorn

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
PROXY_HEADERS = {
    "X-Forwarded-For": "203.0.113.7",
    "Forwarded": "for=203.0.113.7",
    "X-Real-IP": "203.0.113.7",
    "X-Forwarded-Host": "example.com",
    "X-Forwarded-Proto": "https",
    "Via": "1.1 proxy.example.com",
}
GENERIC_BODY = re.compile(
    r"Internal Server Error\s+The application failed to load\.\s+"
    r"Error id: ([0-9a-f]{8}) \(see the server log\)\."
)


@dataclass(frozen=True)
class BadEdit:
    """A broken save: ``new`` replaces ``old`` in ``path`` (``new=None``: the file is deleted).

    ``at_load`` errors happen while the target is imported (django.setup()), so the
    reloader's error page answers; the others happen when Django first imports the URLconf
    and views at request time, where Django's own DEBUG page answers.
    """

    path: str
    old: str
    new: str | None
    exception: str
    message: str
    at_load: bool
    in_traceback: bool = True  # whether ``path`` itself appears in the traceback

    def apply(self, project: Path) -> str:
        target = project / self.path
        original = target.read_text()
        if self.new is None:
            target.unlink()
        else:
            assert original.count(self.old) == 1
            write(target, original.replace(self.old, self.new))
        return original


READY = "        pass\n"
BAD_EDITS = {
    "syntax-at-load": BadEdit(
        "pages/apps.py", "class PagesConfig", "def broken(:\n\n\nclass PagesConfig",
        "SyntaxError", "apps.py", at_load=True,
    ),
    "name-at-load": BadEdit(
        "pages/apps.py", "class PagesConfig", "undefined_name_xyz\n\n\nclass PagesConfig",
        "NameError", "undefined_name_xyz", at_load=True,
    ),
    "import-at-load": BadEdit(
        "pages/apps.py", "from django.apps", "import no_such_module_xyz\nfrom django.apps",
        "ModuleNotFoundError", "no_such_module_xyz", at_load=True,
    ),
    "settings": BadEdit(
        "demo/settings.py", '    "pages",\n', '    "pages",\n    "no_such_app_xyz",\n',
        "ModuleNotFoundError", "no_such_app_xyz", at_load=True, in_traceback=False,
    ),
    "ready": BadEdit(
        "pages/apps.py", READY, '        raise RuntimeError("ready failed xyz")\n',
        "RuntimeError", "ready failed xyz", at_load=True,
    ),
    # Sent once the application loaded, as runserver sends it: the receiver is user code.
    "autoreload-receiver": BadEdit(
        "pages/apps.py", READY,
        "        from django.utils.autoreload import autoreload_started\n\n"
        "        def fail(sender, **kwargs):\n"
        '            raise RuntimeError("receiver failed xyz")\n\n'
        "        autoreload_started.connect(fail, weak=False)\n",
        "RuntimeError", "receiver failed xyz", at_load=True,
    ),
    "syntax-in-view": BadEdit(
        "pages/views.py", "def index(", "def broken(:\n\n\ndef index(",
        "SyntaxError", "views.py", at_load=False,
    ),
    "name-in-view": BadEdit(
        "pages/views.py", "PAGES = [", "undefined_name_xyz\nPAGES = [",
        "NameError", "undefined_name_xyz", at_load=False,
    ),
    "deleted-module": BadEdit(
        "pages/version.py", "", None, "ModuleNotFoundError", "pages.version", at_load=False,
    ),
}  # fmt: skip


def wait_for_status(server: PreforkServer, path: str, status: int, **headers: str) -> Response:
    def check() -> Response | None:
        server.check_alive()
        resp = get(server.url(path), headers=headers)
        return resp if resp.status == status else None

    return wait_until(check, message=lambda: f"{status} at {path}:\n{server.log_tail()}")


def assert_details(resp: Response, edit: BadEdit, content_type: str) -> None:
    assert resp.status == 500
    assert resp.content_type.startswith(content_type), resp.headers
    assert edit.exception in resp.body, resp.body[:2000]
    assert edit.message in resp.body, resp.body[:2000]


# Every case under sync workers; under gthread one case of each way a failure is served (the
# error page of a failed load, of failed settings, Django's page for a broken view, a module
# gone): the cases left out differ from one of these only in the exception raised.
GTHREAD_CASES = ("syntax-at-load", "settings", "syntax-in-view", "deleted-module")
WORKER_CASES = [
    pytest.param(case, worker, id=f"{case}-{worker}")
    for worker in ("sync", "gthread")
    for case in BAD_EDITS
    if worker == "sync" or case in GTHREAD_CASES
]


@pytest.mark.parametrize(("case", "worker"), WORKER_CASES)
def test_bad_save_keeps_server_up_and_next_save_fixes_it(
    demo_server: StartGunicorn, demo_project: Path, worker: str, case: str
) -> None:
    edit = BAD_EDITS[case]
    server = demo_server(worker)
    original = edit.apply(demo_project)

    broken = wait_for_status(server, "/version/", 500, **HTML)
    # Details are checked after recovery, so one run tells about both.
    details_problem = None
    try:
        assert_details(broken, edit, "text/html")
        if edit.at_load:
            error_id = broken.headers.get("x-reloader-error-id", "")
            assert ERROR_ID_RE.fullmatch(error_id), broken.headers
            if edit.in_traceback:
                assert Path(edit.path).name in broken.body
            assert_details(get(server.url("/version/")), edit, "text/plain")
    except AssertionError as exc:
        details_problem = exc
    # Still serving, from the expected number of workers.
    assert server.poll() is None
    assert len(server.wait_workers()) == server.workers

    write(demo_project / edit.path, original.replace('"v1"', '"v2"'))
    fresh = "v2 pid=" if edit.path.endswith("version.py") else "v1 pid="
    # Back in every worker, and no error page after the first fresh answer.
    assert_fresh_everywhere(server, "/version/", fresh, "/slow/?s=0.3")
    if details_problem is not None:
        raise AssertionError(f"the 500 page lacks details: {details_problem}")


PLAIN_ERROR = BadEdit(
    "plainversion.py", 'VERSION = "v1"', 'VERSION = "v1"\ndef broken(:\n',
    "SyntaxError", "plainversion.py", at_load=True,
)  # fmt: skip


@pytest.mark.parametrize("show_errors", [None, "1", "0"])
def test_error_details_only_where_allowed(
    plain_server: StartGunicorn, plain_project: Path, show_errors: str | None
) -> None:
    """The app is broken from the start; who sees the traceback depends on the client."""
    original = PLAIN_ERROR.apply(plain_project)
    env = {} if show_errors is None else {"RELOADER_SHOW_ERRORS": show_errors}
    server = plain_server("gthread", env=env, warm=False)

    loopback_sees = show_errors != "0"
    proxied_sees = show_errors == "1"
    cases = [({}, loopback_sees, "text/plain"), (HTML, loopback_sees, "text/html")]
    cases += [({name: value}, proxied_sees, "text/plain") for name, value in PROXY_HEADERS.items()]
    for headers, details, content_type in cases:
        resp = get(server.url("/"), headers=headers)
        error_id = resp.headers.get("x-reloader-error-id", "")
        assert resp.status == 500, (headers, resp)
        assert ERROR_ID_RE.fullmatch(error_id), (headers, resp.headers)
        if details:
            assert_details(resp, PLAIN_ERROR, content_type)
        else:
            assert resp.content_type.startswith("text/plain"), (headers, resp.headers)
            match = GENERIC_BODY.search(resp.body)
            assert match and match.group(1) == error_id, (headers, resp.body)
            for secret in ("SyntaxError", "plainversion", "Traceback", str(plain_project)):
                assert secret not in resp.body, (headers, resp.body)
        # The id leads from the page to the full traceback in the server log.
        server.wait_for_log(error_id)
        logged = [line for line in server.log().splitlines() if error_id in line]
        assert logged, error_id
    assert "SyntaxError" in server.log()

    write(plain_project / PLAIN_ERROR.path, original.replace('"v1"', '"v2"'))
    assert_fresh_everywhere(server, "/", "v2 pid=", "/slow?s=0.3")


@pytest.mark.parametrize(
    ("variable", "value", "accepted"),
    [
        ("RELOADER_ENABLED", "maybe", ["true", "false"]),
        ("RELOADER_ENABLED", "", ["unset it", "true", "false"]),
        ("RELOADER_SHOW_ERRORS", "perhaps", ["auto", "true", "false"]),
        ("RELOADER_POLLING", "sometimes", ["true", "false"]),
    ],
)
def test_bad_environment_value_fails_startup(
    demo_server: StartGunicorn, variable: str, value: str, accepted: list[str]
) -> None:
    server = demo_server("sync", env={variable: value}, warm=False, ready=None)
    assert server.wait_exit() != 0
    log = server.log()
    assert variable in log
    assert value in log
    for word in accepted:
        assert word in log.lower(), f"accepted value {word!r} not named:\n{log}"


def raw_get(server: PreforkServer, request: bytes) -> tuple[int, dict[str, str], str]:
    """Send ``request`` as it is over a fresh socket (http.client would fix up its Host) and
    read the answer until the server closes the connection."""
    address = urllib.parse.urlsplit(server.url())
    with socket.create_connection((address.hostname, address.port), timeout=30) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body.decode("utf-8", "replace")


SECRET = "s3cr3t-from-settings-xyz"
REBINDING_BREAKS = {
    # The settings module fails, so Django's ALLOWED_HOSTS is unknown.
    "settings": ("demo/settings.py", "DEBUG = True\n", f'raise RuntimeError("{SECRET}")\n'),
    # Settings loaded, with the demo's ALLOWED_HOSTS = ["*"]: '*' must not open the page.
    "ready": ("pages/apps.py", READY, f'        raise RuntimeError("{SECRET}")\n'),
}


@pytest.mark.parametrize("case", REBINDING_BREAKS)
def test_dns_rebinding_host_gets_no_details(
    demo_server: StartGunicorn, demo_project: Path, case: str
) -> None:
    """A page on attacker.example resolved to 127.0.0.1 makes the developer's browser ask the
    server under the attacker's name: the connection is loopback, the Host is not ours."""
    path, old, new = REBINDING_BREAKS[case]
    target = demo_project / path
    target.write_text(target.read_text().replace(old, new, 1))
    env = {"RELOADER_TRUSTED_HOSTS": "dev.example.test"}
    server = demo_server("sync", env=env, warm=False)
    port = urllib.parse.urlsplit(server.url()).port

    def ask(host: str | None, version: str = "HTTP/1.1") -> tuple[int, dict[str, str], str]:
        host_line = f"Host: {host}\r\n" if host is not None else ""
        request = f"GET /version/ {version}\r\n{host_line}Accept: text/html\r\nConnection: close"
        return raw_get(server, f"{request}\r\n\r\n".encode("latin-1"))

    hostile = [
        f"attacker.example:{port}",
        f"127.0.0.1.attacker.example:{port}",
        f"localhost.attacker.example:{port}",
        "127.1",
        f"ATTACKER.example.:{port}",
    ]
    for status, headers, body in [*map(ask, hostile), ask(None, "HTTP/1.0")]:
        assert status == 500, body
        assert SECRET not in body and "Traceback" not in body, body
        assert GENERIC_BODY.search(body), body
        assert headers["x-frame-options"] == "DENY"
    for host in [f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", "dev.example.test"]:
        status, headers, body = ask(host)
        assert status == 500 and SECRET in body, (host, body[:500])
        assert headers["content-type"].startswith("text/html"), headers
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["cache-control"] == "no-store"
        assert headers["x-content-type-options"] == "nosniff"


USER_LOGGING = """
LOGGING = {{
    "version": 1,
    {disable}
    "formatters": {{"user": {{"format": "USERLOG %(name)s: %(message)s"}}}},
    "handlers": {{"console": {{"class": "logging.StreamHandler", "formatter": "user"}}}},
    "root": {{"handlers": ["console"], "level": "INFO"}},
}}
"""


@pytest.mark.parametrize("disable", [None, True, False])
def test_failed_load_reaches_the_users_log_configuration(
    demo_server: StartGunicorn, demo_project: Path, disable: bool | None
) -> None:
    """A Django LOGGING (by default disable_existing_loggers=True) must neither silence the
    traceback the page points to, nor route it past the handlers the user configured."""
    key = "" if disable is None else f'"disable_existing_loggers": {disable},'
    settings = demo_project / "demo" / "settings.py"
    settings.write_text(settings.read_text() + USER_LOGGING.format(disable=key))
    apps = demo_project / "pages" / "apps.py"
    original = apps.read_text()
    write(apps, original.replace(READY, '        raise RuntimeError("ready failed xyz")\n'))
    server = demo_server("sync", warm=False)

    error_id = get(server.url("/version/")).headers["x-reloader-error-id"]
    log = server.wait_for_log(error_id)
    line = next(line for line in log.splitlines() if error_id in line)
    assert line.startswith("USERLOG reloader: could not load"), line
    assert "ready failed xyz" in log[log.index(error_id) :]

    write(apps, original)
    wait_for_status(server, "/version/", 200)
    restarts = restart_lines(server.log())
    assert any(line.startswith("USERLOG reloader: restarting") for line in restarts), restarts
