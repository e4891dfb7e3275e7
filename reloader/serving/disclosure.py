"""Who may see a traceback. It shows source code and settings, so by default only the
developer at the machine: a loopback client whose request no proxy touched, addressed to a
host name that only this machine can answer for.

The connection's address alone is not enough: with DNS rebinding any web page can make the
developer's browser send requests to 127.0.0.1 under the attacker's host name and read the
answers, so the `Host` header must be a loopback name or address, or one the user trusts
(Django's Host validation and Werkzeug's debugger apply the same rule: CVE-2016-9014,
CVE-2024-34069).
"""

from __future__ import annotations

import ipaddress
import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from ..settings import ShowErrors

__all__ = [
    "PROXY_HEADERS",
    "host_is_trusted",
    "is_loopback",
    "may_show_details",
    "parse_host",
    "proxied",
]

PROXY_HEADERS = (
    "HTTP_FORWARDED",
    "HTTP_X_REAL_IP",
    "HTTP_X_CLIENT_IP",
    "HTTP_CLIENT_IP",
    "HTTP_TRUE_CLIENT_IP",
    "HTTP_CF_CONNECTING_IP",
    "HTTP_X_CLUSTER_CLIENT_IP",
    "HTTP_VIA",
)
"""Headers a reverse proxy adds: their presence means the real client is somewhere else,
even when the connection comes from 127.0.0.1. Every `X-Forwarded-*` header counts too."""
_FORWARDED_PREFIX = "HTTP_X_FORWARDED_"

# Django's `host_validation_re`: a name of letters, digits, dots and dashes, or a bracketed
# IPv6 literal, and an optional port. Anything else (commas of a repeated header, spaces,
# other bytes) is no host name, and gets no details.
_HOST = re.compile(r"([a-z0-9.-]+|\[[a-f0-9]*:[a-f0-9.:]+\])(?::([0-9]+))?")


def is_loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False  # a unix socket path, an empty string: a proxy is in front
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool((mapped or ip).is_loopback)


def parse_host(header: str) -> str | None:
    """The host part of a `Host` header, lower case, without port or one trailing dot (as
    Django compares them); None when it is no valid host."""
    match = _HOST.fullmatch(header.lower())
    if match is None:
        return None
    host = match[1]
    return host[:-1] if host.endswith(".") else host


def _is_loopback_host(host: str) -> bool:
    # Browsers resolve 'localhost' and every '*.localhost' to loopback themselves
    # (RFC 6761), so no DNS answer of an attacker can stand behind them.
    if host == "localhost" or host.endswith(".localhost"):
        return True
    literal = host[1:-1] if host.startswith("[") else host
    try:
        ip = ipaddress.ip_address(literal)
    except ValueError:
        return False
    # An IPv4 address must be written as one ('127.1' is no address here), an IPv6 one in
    # brackets: a name that merely starts with '127.' is rebindable.
    return (host.startswith("[") == (ip.version == 6)) and is_loopback(literal)


def _matches(host: str, pattern: str) -> bool:
    """Django's ALLOWED_HOSTS rule for one entry, except '*' (see `host_is_trusted`)."""
    pattern = pattern.lower()
    if pattern.startswith("."):
        return host == pattern[1:] or host.endswith(pattern)
    return host == pattern


def host_is_trusted(host: str, trusted: Iterable[str]) -> bool:
    """Whether details may go to a request for `host` (from `parse_host`): a loopback name or
    address, or one matching `trusted` ('.example.com' covers its subdomains). A '*' entry
    trusts nothing: it would let a rebinding attacker's name through."""
    return _is_loopback_host(host) or any(_matches(host, p) for p in trusted if p != "*")


def _django_allowed_hosts() -> tuple[str, ...]:
    """Django's ALLOWED_HOSTS when its settings loaded; nothing otherwise (a failed settings
    module trusts nothing)."""
    conf = sys.modules.get("django.conf")
    try:
        settings = getattr(conf, "settings", None)
        if settings is None or not settings.configured:
            return ()
        allowed = settings.ALLOWED_HOSTS
    except Exception:
        return ()
    if isinstance(allowed, str) or not isinstance(allowed, Iterable):
        return ()
    return tuple(entry for entry in allowed if isinstance(entry, str))


def proxied(environ: Mapping[str, Any]) -> bool:
    """Whether the request shows a proxy's traces: one of its headers, or HTTP/1.0, which
    browsers no longer speak and nginx's `proxy_pass` speaks by default."""
    if any(header in environ for header in PROXY_HEADERS):
        return True
    if any(key.startswith(_FORWARDED_PREFIX) for key in environ):
        return True
    return str(environ.get("SERVER_PROTOCOL", "")).upper() in ("HTTP/1.0", "HTTP/0.9")


def may_show_details(
    environ: Mapping[str, Any], policy: ShowErrors, trusted_hosts: Iterable[str] = ()
) -> bool:
    """The rule for every page the wrapper serves. `auto`: a loopback client, no proxy's
    traces, and a `Host` that is loopback, in `trusted_hosts` or in Django's ALLOWED_HOSTS.
    A request without a `Host` gets no details: every browser sends one."""
    if policy is ShowErrors.ALWAYS:
        return True
    if policy is ShowErrors.NEVER:
        return False
    if proxied(environ) or not is_loopback(str(environ.get("REMOTE_ADDR", ""))):
        return False
    host = parse_host(str(environ.get("HTTP_HOST", "")))
    if host is None:
        return False
    return host_is_trusted(host, (*trusted_hosts, *_django_allowed_hosts()))
