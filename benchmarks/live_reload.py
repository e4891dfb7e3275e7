"""The demo with the companions Django developers run beside it: django-browser-reload (the
tab reloads by itself) and django-debug-toolbar, and a headless Chromium to look at it.

Shared by the browser tests and the benchmark's browser section. The demo itself stays as
shipped; a copy gets a settings module of its own that adds the two apps, their middleware,
their URLs, and one test-only middleware that prints a line when a tab opens its event stream
(the stream lives in a SharedWorker, out of the browser driver's sight).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

LIVE_SETTINGS = "demo.live_settings"
STREAM_OPENED = "EVENTS-OPENED"

_SETTINGS = """\
from .settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "django_browser_reload", "debug_toolbar"]  # noqa: F405
MIDDLEWARE = [
    "demo.stream_log.middleware",
    "debug_toolbar.middleware.DebugToolbarMiddleware",
    *MIDDLEWARE,  # noqa: F405
    "django_browser_reload.middleware.BrowserReloadMiddleware",
]
ROOT_URLCONF = "demo.live_urls"
INTERNAL_IPS = ["127.0.0.1"]
"""
_URLS = """\
from debug_toolbar.toolbar import debug_toolbar_urls
from django.urls import include, path

from .urls import urlpatterns as demo_patterns

urlpatterns = [
    path("__reload__/", include("django_browser_reload.urls")),
    *demo_patterns,
    *debug_toolbar_urls(),
]
"""
_STREAM_LOG = f'''\
import os


def middleware(get_response):
    def log_streams(request):
        if request.path == "/__reload__/events/":
            print(f"{STREAM_OPENED} pid={{os.getpid()}}", flush=True)
        return get_response(request)

    return log_streams
'''


def make_live(project: Path) -> Path:
    """Add the companions' settings to a copy of the demo; returns the project."""
    (project / "demo" / "live_settings.py").write_text(_SETTINGS)
    (project / "demo" / "live_urls.py").write_text(_URLS)
    (project / "demo" / "stream_log.py").write_text(_STREAM_LOG)
    return project


CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
"""As root, and on a machine whose network is closed (Chromium would keep calling home)."""


def chromium_missing() -> str | None:
    """Why the browser cannot be driven here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[test]')"
    if shutil.which(CHROMIUM) is None:
        return f"chromium not found at {CHROMIUM}; install Debian's chromium or set CHROMIUM"
    return None


@contextlib.contextmanager
def browser() -> Iterator[Any]:
    """A headless system Chromium driven by Playwright (no browser download is needed)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        instance = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


PAINTED_AT = """() => {
    const paint = performance.getEntriesByName("first-contentful-paint")[0];
    return paint ? (performance.timeOrigin + paint.startTime) / 1000 : null;
}"""
"""When the tab's current document was first painted, in seconds since the epoch: the
moment a reload shows the developer the new page."""
