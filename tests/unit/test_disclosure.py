"""Who sees a traceback, and what the error page says to each."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest

from reloader.serving import ErrorApp, LoadFailure, may_show_details
from reloader.settings import ShowErrors

LOCAL = {"REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1:8000", "SERVER_PROTOCOL": "HTTP/1.1"}


@pytest.mark.parametrize(
    ("environ", "shown"),
    [
        ({}, True),
        ({"REMOTE_ADDR": "::1"}, True),
        ({"REMOTE_ADDR": "::ffff:127.0.0.1"}, True),
        ({"REMOTE_ADDR": "10.1.2.3"}, False),
        ({"REMOTE_ADDR": ""}, False),
        ({"REMOTE_ADDR": "/run/app.sock"}, False),
        ({"HTTP_X_FORWARDED_FOR": "203.0.113.9"}, False),
        ({"HTTP_FORWARDED": "for=203.0.113.9"}, False),
        ({"HTTP_X_REAL_IP": "203.0.113.9"}, False),
        ({"HTTP_VIA": "1.1 proxy"}, False),
        ({"HTTP_X_FORWARDED_PORT": "443"}, False),  # any X-Forwarded-*
        ({"HTTP_X_FORWARDED_SERVER": "edge"}, False),
        # nginx's proxy_pass speaks HTTP/1.0 unless told otherwise; browsers never do.
        ({"SERVER_PROTOCOL": "HTTP/1.0"}, False),
    ],
)
def test_auto_shows_details_only_to_loopback_without_proxy(environ: Any, shown: bool) -> None:
    assert may_show_details({**LOCAL, **environ}, ShowErrors.AUTO) is shown


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "localhost:8000",
        "LOCALHOST:8000",
        "localhost.",
        "localhost.:8000",
        "app.localhost:8000",
        "127.0.0.1",
        "127.0.0.1:8000",
        "127.1.2.3:8000",
        "[::1]",
        "[::1]:8000",
    ],
)
def test_loopback_host_names_and_addresses_see_details(host: str) -> None:
    assert may_show_details({**LOCAL, "HTTP_HOST": host}, ShowErrors.AUTO)


@pytest.mark.parametrize(
    "host",
    [
        "attacker.example",  # DNS rebinding: the attacker's name resolved to 127.0.0.1
        "attacker.example:8000",
        "127.0.0.1.attacker.example",
        "localhost.attacker.example",
        "localhost.attacker.example.",
        "localhostattacker.example",
        "127.1",  # resolvers take it for 127.0.0.1; a name to us, and rebindable
        "2130706433",  # 127.0.0.1 as one number
        "0x7f000001",
        "::1",  # an IPv6 address must be bracketed
        "[::1",
        "[::2]:8000",
        "[fe80::1]",
        "10.0.0.1",
        "",
        " ",
        "localhost:8000:9000",
        "localhost:port",
        "localhost,attacker.example",  # several Host headers, joined by a server
        "attacker.example,localhost",
        "localhost attacker.example",
        "localhost\x00.attacker.example",
        "localhost\r\nX: y",
        "l\xf6calhost",  # odd bytes, decoded as latin-1 by the server
        "localhost/",
        "user@localhost",
    ],
)
def test_other_hosts_get_no_details(host: str) -> None:
    assert not may_show_details({**LOCAL, "HTTP_HOST": host}, ShowErrors.AUTO)


def test_a_request_without_host_gets_no_details() -> None:
    """HTTP/1.0 may leave Host out; SERVER_NAME is the server's own address, not what the
    client asked for, so it proves nothing about the reader."""
    environ = {k: v for k, v in LOCAL.items() if k != "HTTP_HOST"}
    assert not may_show_details({**environ, "SERVER_NAME": "127.0.0.1"}, ShowErrors.AUTO)


def test_trusted_hosts_follow_allowed_hosts_rules_but_never_star() -> None:
    trusted = ("dev.example.com", ".lan.example")
    for host, shown in [
        ("dev.example.com:8000", True),
        ("DEV.EXAMPLE.COM.", True),
        ("other.example.com", False),
        ("lan.example", True),
        ("box.lan.example", True),
        ("evillan.example", False),
        ("lan.example.attacker.example", False),
    ]:
        assert may_show_details({**LOCAL, "HTTP_HOST": host}, ShowErrors.AUTO, trusted) is shown
    assert not may_show_details({**LOCAL, "HTTP_HOST": "a.example"}, ShowErrors.AUTO, ("*",))


@pytest.fixture
def django_settings() -> Iterator[types.SimpleNamespace]:
    """A configured `django.conf.settings` as the rule reads it, without setting Django up."""
    settings = types.SimpleNamespace(configured=True, ALLOWED_HOSTS=[])
    saved = sys.modules.get("django.conf")
    sys.modules["django.conf"] = types.SimpleNamespace(settings=settings)  # type: ignore[assignment]
    try:
        yield settings
    finally:
        if saved is None:
            del sys.modules["django.conf"]
        else:
            sys.modules["django.conf"] = saved


def test_django_allowed_hosts_count_once_settings_loaded(
    django_settings: types.SimpleNamespace,
) -> None:
    environ = {**LOCAL, "HTTP_HOST": "shop.test:8000"}
    assert not may_show_details(environ, ShowErrors.AUTO)
    django_settings.ALLOWED_HOSTS = [".shop.test"]
    assert may_show_details(environ, ShowErrors.AUTO)
    django_settings.ALLOWED_HOSTS = ["*"]  # Django accepts any host; we do not
    assert not may_show_details(environ, ShowErrors.AUTO)
    django_settings.ALLOWED_HOSTS = [".shop.test"]
    django_settings.configured = False  # the settings module failed: it trusts nothing
    assert not may_show_details(environ, ShowErrors.AUTO)


def test_always_and_never_override_the_client_check() -> None:
    assert may_show_details({"REMOTE_ADDR": "198.51.100.7"}, ShowErrors.ALWAYS)
    assert not may_show_details(LOCAL, ShowErrors.NEVER)


def _failure() -> LoadFailure:
    try:
        exec(compile("def f():\n    raise NameError('nope <b>')\nf()\n", "<demo>", "exec"))
    except NameError as exc:
        return LoadFailure.capture("demo.wsgi:application", exc)
    raise AssertionError("unreachable")


def _call(app: ErrorApp, environ: dict[str, Any]) -> tuple[str, dict[str, str], str]:
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"], seen["headers"] = status, dict(headers)

    body = b"".join(app(environ, start_response)).decode()
    return seen["status"], seen["headers"], body


def test_error_page_forms() -> None:
    failure = _failure()
    app = ErrorApp(failure, ShowErrors.AUTO)
    local = LOCAL

    status, headers, body = _call(app, {**local, "HTTP_ACCEPT": "text/html,*/*"})
    assert status.startswith("500")
    assert headers["Content-Type"].startswith("text/html")
    assert "NameError" in body and "nope &lt;b&gt;" in body  # escaped

    status, headers, body = _call(app, local)
    assert headers["Content-Type"].startswith("text/plain")
    assert "NameError: nope <b>" in body

    status, headers, body = _call(app, {"REMOTE_ADDR": "203.0.113.9"})
    assert "NameError" not in body
    assert f"Error id: {failure.error_id}" in body
    assert headers["X-Reloader-Error-Id"] == failure.error_id
    assert failure.error_id in failure.log_text()


@pytest.mark.parametrize("environ", [LOCAL, {**LOCAL, "HTTP_ACCEPT": "text/html"}, {}])
def test_every_page_forbids_framing_caching_sniffing_and_loads_nothing(environ: Any) -> None:
    _status, headers, body = _call(ErrorApp(_failure(), ShowErrors.AUTO), environ)
    assert headers["X-Frame-Options"] == "DENY"
    policy = headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy and "default-src 'none'" in policy
    assert headers["Cache-Control"] == "no-store"
    assert headers["X-Content-Type-Options"] == "nosniff"
    for reference in ("src=", "href=", "url(", "@import", "<script", "<link"):
        assert reference not in body
