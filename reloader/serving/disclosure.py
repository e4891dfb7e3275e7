"""Who may see a traceback. It shows source code and settings, so by default only the
developer at the machine: a loopback client whose request no proxy touched."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from ..settings import ShowErrors

__all__ = ["PROXY_HEADERS", "is_loopback", "may_show_details"]

PROXY_HEADERS = (
    "HTTP_FORWARDED",
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_REAL_IP",
    "HTTP_X_CLIENT_IP",
    "HTTP_CLIENT_IP",
    "HTTP_TRUE_CLIENT_IP",
    "HTTP_CF_CONNECTING_IP",
    "HTTP_X_CLUSTER_CLIENT_IP",
    "HTTP_VIA",
)
"""Headers a reverse proxy adds: their presence means the real client is somewhere else,
even when the connection comes from 127.0.0.1."""


def is_loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False  # a unix socket path, an empty string: a proxy is in front
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool((mapped or ip).is_loopback)


def may_show_details(environ: Mapping[str, Any], policy: ShowErrors) -> bool:
    if policy is ShowErrors.ALWAYS:
        return True
    if policy is ShowErrors.NEVER:
        return False
    if any(header in environ for header in PROXY_HEADERS):
        return False
    return is_loopback(str(environ.get("REMOTE_ADDR", "")))
