"""Who sees a traceback, and what the error page says to each."""

from __future__ import annotations

from typing import Any

import pytest

from reloader.serving import ErrorApp, LoadFailure, may_show_details
from reloader.settings import ShowErrors


@pytest.mark.parametrize(
    ("environ", "shown"),
    [
        ({"REMOTE_ADDR": "127.0.0.1"}, True),
        ({"REMOTE_ADDR": "::1"}, True),
        ({"REMOTE_ADDR": "::ffff:127.0.0.1"}, True),
        ({"REMOTE_ADDR": "10.1.2.3"}, False),
        ({"REMOTE_ADDR": ""}, False),
        ({"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.9"}, False),
        ({"REMOTE_ADDR": "127.0.0.1", "HTTP_FORWARDED": "for=203.0.113.9"}, False),
        ({"REMOTE_ADDR": "127.0.0.1", "HTTP_X_REAL_IP": "203.0.113.9"}, False),
    ],
)
def test_auto_shows_details_only_to_loopback_without_proxy(environ: Any, shown: bool) -> None:
    assert may_show_details(environ, ShowErrors.AUTO) is shown


def test_always_and_never_override_the_client_check() -> None:
    assert may_show_details({"REMOTE_ADDR": "198.51.100.7"}, ShowErrors.ALWAYS)
    assert not may_show_details({"REMOTE_ADDR": "127.0.0.1"}, ShowErrors.NEVER)


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
    local = {"REMOTE_ADDR": "127.0.0.1"}

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
