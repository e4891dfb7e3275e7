"""The WSGI application served while the real one fails to load: HTTP 500 for every request,
with the exception for those who may see it (an HTML page for browsers, plain text for the
rest) and an error id for everyone else."""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..settings import ShowErrors
from .disclosure import may_show_details
from .failure import Frame, LoadFailure

__all__ = ["ErrorApp"]

StartResponse = Callable[..., Any]

_STYLE = """
body{margin:0;font:15px/1.45 system-ui,sans-serif;color:#222;background:#fafafa}
header{background:#8b1a1a;color:#fff;padding:18px 28px}
h1{margin:0 0 6px;font-size:24px}
header p{margin:0;font-size:17px;white-space:pre-wrap;word-break:break-word}
main{padding:8px 28px 28px}
h2{font-size:17px;margin:22px 0 8px}
.frame{background:#fff;border:1px solid #ddd;border-radius:4px;margin:0 0 12px}
.where{padding:6px 10px;background:#f0f0f0;font-family:ui-monospace,monospace;font-size:13px}
pre{margin:0;padding:8px 10px;font:13px/1.4 ui-monospace,monospace;overflow-x:auto}
.line{display:block}.hit{background:#ffe3e3;font-weight:bold}
.full{background:#fff;border:1px solid #ddd;border-radius:4px}
footer{color:#666;font-size:13px;padding:0 28px 20px}
"""


_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()

SECURITY_HEADERS = (
    # The page loads nothing (no script, image, font or style sheet from anywhere) and may not
    # be framed: a page of another site cannot overlay it or read it through a frame.
    (
        "Content-Security-Policy",
        f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; frame-ancestors 'none'; "
        "base-uri 'none'; form-action 'none'",
    ),
    ("X-Frame-Options", "DENY"),
    # Neither a browser's nor a proxy's cache may keep a page with source and settings.
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
)
"""Sent with every page the wrapper serves, with or without details."""


class ErrorApp:
    """Serves `failure` to every request."""

    def __init__(
        self, failure: LoadFailure, policy: ShowErrors, trusted_hosts: tuple[str, ...] = ()
    ) -> None:
        self.failure = failure
        self.policy = policy
        self.trusted_hosts = trusted_hosts

    def __call__(
        self, environ: Mapping[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        if not may_show_details(environ, self.policy, self.trusted_hosts):
            content_type, body = "text/plain; charset=utf-8", self.opaque_text()
        elif "text/html" in str(environ.get("HTTP_ACCEPT", "")):
            content_type, body = "text/html; charset=utf-8", self.html()
        else:
            content_type, body = "text/plain; charset=utf-8", self.text()
        data = body.encode("utf-8", "replace")
        start_response(
            "500 Internal Server Error",
            [
                ("Content-Type", content_type),
                ("Content-Length", str(len(data))),
                *SECURITY_HEADERS,
                ("X-Reloader-Error-Id", self.failure.error_id),
            ],
        )
        return [data]

    def opaque_text(self) -> str:
        return (
            "Internal Server Error\n\nThe application failed to load. "
            f"Error id: {self.failure.error_id} (see the server log).\n"
        )

    def text(self) -> str:
        f = self.failure
        parts = [f"{f.exc_type}: {f.message}", "", f"while loading {f.target}", ""]
        if f.user_frames:
            parts.append("In your code:")
            for frame in f.user_frames:
                parts.append(f'  File "{frame.filename}", line {frame.lineno}, in {frame.function}')
                parts.extend(
                    f"  {'>' if n == frame.lineno else ' '} {n:5} | {text}"
                    for n, text in frame.context
                )
            parts.append("")
        parts += ["Traceback:", f.traceback_text, self._footer()]
        return "\n".join(parts)

    def html(self) -> str:
        f = self.failure
        frames = "".join(_frame_html(frame) for frame in f.user_frames)
        yours = f"<h2>In your code</h2>{frames}" if frames else ""
        return (
            "<!doctype html><html lang=en><head><meta charset=utf-8>"
            f"<title>{html.escape(f.exc_type)} while loading {html.escape(f.target)}</title>"
            f"<style>{_STYLE}</style></head><body>"
            f"<header><h1>{html.escape(f.exc_type)}</h1><p>{html.escape(f.message)}</p></header>"
            f"<main><p>while loading <code>{html.escape(f.target)}</code></p>{yours}"
            f"<h2>Traceback</h2><pre class=full>{html.escape(f.traceback_text)}</pre></main>"
            f"<footer>{html.escape(self._footer())}</footer></body></html>"
        )

    def _footer(self) -> str:
        return (
            f"Error id {self.failure.error_id}. reloader serves this page until a saved change "
            "fixes the error, then the application again."
        )


def _frame_html(frame: Frame) -> str:
    lines = "".join(
        f'<span class="line{" hit" if n == frame.lineno else ""}">{n:5}  {html.escape(text)}</span>'
        for n, text in frame.context
    )
    return (
        f"<div class=frame><div class=where>{html.escape(frame.filename)}, line {frame.lineno}, "
        f"in {html.escape(frame.function)}</div><pre>{lines}</pre></div>"
    )
