"""Save → page repainted in a real browser tab, with django-browser-reload in the page.

A headless Chromium keeps /hello/ open; the test never reloads it. For each save: the tab's
event stream is open (a STREAM_OPENED line came from the server since the last restart), the
wall-clock time is taken, the file is written, and the tab must show the new text by itself.
The repaint time is the new document's first contentful paint (browser clock, epoch seconds)
minus the save time.

Two kinds of edit: the view module (pages/version.py, "code <token>" on /hello/), which
restarts the workers, and the page's template, which django-browser-reload answers with a
reload of the tab alone. And the view edit with two tabs open in one browser profile:
django-browser-reload runs one SharedWorker per origin, so both tabs share one event stream,
and that worker keeps one port, the last-loaded tab's: only that tab is told to reload (the
other one's repaint is counted, not waited for).

On the gunicorn tools, every view save also checks that no process serving before the save
is still alive RELOADER_GRACE after it (a stopping worker must be gone within its grace; an
open event stream must not hold it), and counts reloader's "still running ... exiting" lines.
"""

from __future__ import annotations

import os
import random
import re
import time
from dataclasses import dataclass, field
from typing import Any

from . import stats
from .config import Settings
from .live_reload import PAINTED_AT, STREAM_OPENED, browser, chromium_missing
from .project import Project
from .session import Session

TEMPLATE = "pages/templates/pages/hello.html"
PAGE = "/hello/"
GRACE_S = 5.0  # RELOADER_GRACE's default; the servers run with it
_MARKER = re.compile(r"template-[\w-]+")
_STILL_RUNNING = re.compile(r"still running .* exiting")
_BOOTED = re.compile(r"Booting worker with pid: (\d+)")
_STREAM = re.compile(re.escape(STREAM_OPENED))
_SHOWN = """([text, needPaint]) => document.body && document.body.innerText.includes(text)
    && (!needPaint || performance.getEntriesByName("first-contentful-paint").length > 0)"""


class TemplateEditor:
    """Saves new markers into the /hello/ template, atomically like `Editor` does for code."""

    def __init__(self, project: Project, prefix: str) -> None:
        self.path = project.root / TEMPLATE
        self.original = self.path.read_text(encoding="utf-8")
        self.prefix = prefix
        self.count = 0

    @property
    def text(self) -> str:
        return f"template-{self.prefix}t{self.count}z"

    def write(self) -> None:
        self.count += 1
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text(_MARKER.sub(self.text, self.original, count=1), encoding="utf-8")
        tmp.chmod(0o644)
        os.replace(tmp, self.path)

    def restore(self) -> None:
        self.path.write_text(self.original, encoding="utf-8")


@dataclass
class Kind:
    """The saves of one kind on one server."""

    repaints: list[float] = field(default_factory=list)
    timeouts: int = 0
    streams_missing: int = 0  # saves made without a fresh stream line (waited edit_timeout)
    others_repainted: int = 0  # two tabs: the tab that was not loaded last
    saves: int = 0

    def summary(self, two_tabs: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "status": "ok",
            "saves": self.saves,
            "timeouts": self.timeouts,
            "median_s": stats.rounded(stats.median(self.repaints)),
            "p90_s": stats.rounded(stats.percentile(self.repaints, 90)),
            "samples_s": [stats.rounded(v) for v in self.repaints],
            "streams_missing": self.streams_missing,
        }
        if two_tabs:
            out["other_tab_repainted"] = self.others_repainted
        return out


class _Run:
    def __init__(self, session: Session, settings: Settings) -> None:
        self.session = session
        self.settings = settings
        self.timeout_ms = settings.browser_timeout * 1000
        self.jitter = random.Random(settings.browser_edits)
        self.gunicorn = session.tool.family == "gunicorn"
        self.grace = {"view_saves_checked": 0, "old_alive_after_grace": 0, "still_running": 0}
        self.stream_since = 0.0  # a stream must have opened after this (monotonic) time

    def count(self, pattern: re.Pattern[str], since: float) -> int:
        """Server log lines matching `pattern` that arrived after `since` (monotonic)."""
        lines = list(self.session.server.lines)
        return sum(1 for stamp, line in lines if stamp > since and pattern.search(line))

    def _wait_stream(self, kind: Kind) -> None:
        deadline = time.monotonic() + self.settings.browser_timeout
        while not self.count(_STREAM, self.stream_since):
            if time.monotonic() > deadline:
                kind.streams_missing += 1
                return
            time.sleep(0.02)

    def open(self, context: Any, text: str) -> Any:
        page = context.new_page()
        self.stream_since = time.monotonic()
        page.goto(f"http://127.0.0.1:{self.session.port}{PAGE}")
        page.wait_for_function(_SHOWN, arg=[text, False], timeout=self.timeout_ms)
        return page

    def _shown(self, page: Any, text: str, timeout_ms: float) -> float | None:
        """Wait for `page` to show `text` by itself; the new document's paint time, or None."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        try:
            page.wait_for_function(_SHOWN, arg=[text, True], timeout=timeout_ms)
        except PlaywrightTimeout:
            return None
        from playwright.sync_api import Error as PlaywrightError

        # The paint entry comes a moment after the text; and a tab that reloads once more
        # (a second new process id) destroys the document being asked: ask the next one.
        deadline = time.monotonic() + timeout_ms / 1000
        while time.monotonic() < deadline:
            try:
                painted = page.evaluate(PAINTED_AT)
            except PlaywrightError:
                painted = None
            if painted is not None:
                return float(painted)
            page.wait_for_timeout(20)
        return None

    def save(self, kind: Kind, pages: list[Any], write: Any, text: Any, restarts: bool) -> None:
        """One save; `pages[-1]` is the tab loaded last, the one django-browser-reload tells.

        After two timeouts and no repaint, the kind's remaining saves are skipped: a server
        that never repaints the tab would otherwise spend `browser_timeout` on each."""
        if kind.timeouts >= 2 and not kind.repaints:
            return
        settle = self.settings.settle_seconds
        time.sleep(settle + self.jitter.uniform(0, self.settings.jitter_seconds))
        self._wait_stream(kind)
        before = self.workers()
        began = time.monotonic()
        saved = time.time()
        write()
        kind.saves += 1
        painted = self._shown(pages[-1], text(), self.timeout_ms)
        if painted is None:
            kind.timeouts += 1
            for page in pages:  # not measured: only to go on with a tab that shows the file
                page.reload()
        else:
            kind.repaints.append(painted - saved)
        for page in pages[:-1]:
            kind.others_repainted += self._shown(page, text(), 1000) is not None
        if restarts:
            self.stream_since = began
            if self.gunicorn:
                self._check_grace(before, began)

    def workers(self) -> set[int]:
        """The live gunicorn workers: booted according to the log, and in the server's tree
        (the arbiter and the warm mode's helpers are not stopped by a reload)."""
        lines = list(self.session.server.lines)
        booted = {int(m.group(1)) for _, line in lines if (m := _BOOTED.search(line))}
        return booted & set(self.session.server.pids())

    def _check_grace(self, before: set[int], began: float) -> None:
        """Every process that served before a view save is gone RELOADER_GRACE after it
        (looked at until then: most are gone within a second)."""
        deadline = began + GRACE_S + 0.25
        while (alive := before & self.workers()) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.grace["view_saves_checked"] += 1
        if alive:
            self.grace["old_alive_after_grace"] += 1


def measure(session: Session, settings: Settings) -> dict[str, Any]:
    missing = chromium_missing()
    if missing:
        return {"status": "skipped", "reason": missing}
    run = _Run(session, settings)
    editor = session.editor
    template = TemplateEditor(session.project, editor.prefix)
    kinds = {"view": Kind(), "template": Kind(), "view_two_tabs": Kind()}

    def code() -> str:
        return f"code {editor.token},"

    n = settings.browser_edits
    started = time.monotonic()
    try:
        with browser() as chromium:
            context = chromium.new_context()
            try:
                tab = [run.open(context, code())]
                for _ in range(n):
                    run.save(kinds["view"], tab, editor.write, code, restarts=True)
                for _ in range(n):
                    run.save(kinds["template"], tab, template.write, lambda: template.text, False)
            finally:
                context.close()
            # A new profile: its own SharedWorker, shared by its two tabs.
            context = chromium.new_context()
            try:
                opened = time.monotonic()
                tabs = [run.open(context, code()), run.open(context, code())]
                run.stream_since = opened  # one stream for both, opened by the first tab
                for _ in range(n):
                    run.save(kinds["view_two_tabs"], tabs, editor.write, code, restarts=True)
            finally:
                context.close()
    finally:
        template.restore()
    run.grace["still_running"] = run.count(_STILL_RUNNING, started)
    return {
        **{name: kind.summary(name == "view_two_tabs") for name, kind in kinds.items()},
        "grace": {"grace_s": GRACE_S, **run.grace} if run.gunicorn else None,
        "streams_opened": run.count(_STREAM, 0.0),
    }
