"""Live reload in a real browser tab: django-browser-reload and django-debug-toolbar on the
demo, served by real gunicorn, looked at by headless Chromium. The tab is never told to
reload by the test: it must show the new code or template by itself."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import DEMO_WARM, WORKER_ARGS, StartGunicorn
from support import DEFAULT_TIMEOUT, PreforkServer, edit, restart_lines, wait_until, write

from benchmarks.live_reload import (
    LIVE_SETTINGS,
    STREAM_OPENED,
    browser,
    chromium_missing,
    make_live,
)

pytestmark = [pytest.mark.gunicorn, pytest.mark.browser]

MODES = {
    "per-worker": ("reloader.wsgi:application",),
    "warm": ("-c", "python:reloader.gunicorn"),
}
TIMEOUT_MS = DEFAULT_TIMEOUT * 1000
ACCESS_LOG = ("--access-logfile", "-", "--access-logformat", "pid=%(p)s %(r)s %(s)s %(L)ss")


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    missing = chromium_missing()
    if missing:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{missing} (required on CI)")
        pytest.skip(missing)
    with browser() as instance:
        yield instance


@pytest.fixture
def live_project(demo_project: Path) -> Path:
    return make_live(demo_project)


def start(gunicorn: StartGunicorn, project: Path, mode: str) -> PreforkServer:
    # django-browser-reload holds a thread per open tab: gthread, as its README says. The
    # access log names the worker of each answer: a failure's log then tells who served what.
    return gunicorn(
        *WORKER_ARGS["gthread"], *MODES[mode], *ACCESS_LOG,
        cwd=project,
        env={"DJANGO_SETTINGS_MODULE": LIVE_SETTINGS},
        warm=DEMO_WARM,
        workers=2,
        helpers=("reloader.warm",),
    )  # fmt: skip


def open_tab(chromium: Any, server: PreforkServer, path: str, text: str) -> Any:
    """A tab showing `path`, once `text` is on it and its event stream is open."""
    opened = server.log().count(STREAM_OPENED)
    page = chromium.new_page()
    page.goto(server.url(path))
    page.get_by_text(text).wait_for(timeout=TIMEOUT_MS)
    wait_until(
        lambda: server.log().count(STREAM_OPENED) > opened,
        message=lambda: f"the tab to open its event stream:\n{server.log_tail()}",
    )
    return page


def shows(page: Any, text: str) -> None:
    """Wait for the tab, reloaded by itself, to show `text`; else fail with what it shows."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(
            "text => document.body && document.body.innerText.includes(text)",
            arg=text,
            timeout=TIMEOUT_MS,
        )
    except PlaywrightTimeout:
        shown = page.evaluate("document.body ? document.body.innerText : ''")[:500]
        loaded = page.evaluate("new Date(performance.timeOrigin).toISOString()")
        pytest.fail(
            f"the tab never showed {text!r}: at {page.url} it shows {shown!r}, a document "
            f"it began to load at {loaded} (compare the server log's times)"
        )


@pytest.mark.parametrize("mode", MODES)
def test_a_view_edit_repaints_the_open_tab(
    gunicorn: StartGunicorn, live_project: Path, chromium: Any, mode: str
) -> None:
    server = start(gunicorn, live_project, mode)
    page = open_tab(chromium, server, "/hello/", "code v1")
    try:
        for version in ("v2", "v3"):  # again: the tab holds a stream to a fresh worker now
            opened = server.log().count(STREAM_OPENED)
            write(live_project / "pages" / "version.py", f'VERSION = "{version}"\n')
            shows(page, f"code {version}")
            assert server.log().count(STREAM_OPENED) > opened, "the tab reconnected first"
        assert "still running" not in server.log(), "no worker had to be cut"
    finally:
        page.close()


@pytest.mark.parametrize("mode", MODES)
def test_a_template_edit_repaints_the_open_tab_once_without_a_restart(
    gunicorn: StartGunicorn, live_project: Path, chromium: Any, mode: str
) -> None:
    """Every worker is told of the save, the tab's stream lives in one of them: the reloaded
    tab's new stream, wherever it opens, must not reload it a second time."""
    server = start(gunicorn, live_project, mode)
    pids = server.worker_pids()
    page = open_tab(chromium, server, "/hello/", "template-v1")
    loads: list[float] = []
    page.on("load", lambda: loads.append(time.monotonic()))
    try:
        template = live_project / "pages" / "templates" / "pages" / "hello.html"
        for n in range(2, 6):  # with 2 workers, a new stream opens in the other one by chance
            before, opened = len(loads), server.log().count(STREAM_OPENED)
            edit(template, f"template-v{n - 1}", f"template-v{n}")
            shows(page, f"template-v{n}")
            wait_until(
                lambda: server.log().count(STREAM_OPENED) > opened,  # noqa: B023
                message="the reloaded tab to open its stream",
            )
            # A second reload would come at once, with the new stream's first answer.
            quiet_until = time.monotonic() + 1.5
            while time.monotonic() < quiet_until:
                assert len(loads) == before + 1, (
                    f"save {n}: the tab reloaded {len(loads) - before} times"
                )
                page.wait_for_timeout(50)
        # (The arbiter may run a short-lived helper of an import meanwhile: not a worker.)
        assert set(pids) <= set(server.worker_pids()) and not restart_lines(server.log())
    finally:
        page.close()


def test_debug_toolbar_still_renders_and_the_tab_reloads(
    gunicorn: StartGunicorn, live_project: Path, chromium: Any
) -> None:
    server = start(gunicorn, live_project, "warm")
    page = open_tab(chromium, server, "/hello/", "code v1")
    try:
        toolbar = page.locator("#djDebugToolbar:visible, #djShowToolBarButton:visible").first
        toolbar.wait_for(state="visible", timeout=TIMEOUT_MS)
        write(live_project / "pages" / "version.py", 'VERSION = "v2"\n')
        shows(page, "code v2")
        toolbar.wait_for(state="visible", timeout=TIMEOUT_MS)
    finally:
        page.close()
