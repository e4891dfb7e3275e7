"""The measurements on a running server: reload latency and staleness, lost requests under
load, idle CPU, throughput/memory, and reload latency with a slow request in flight.

One save is followed the same way everywhere (`_follow_save`): pollers request the edited
module's page (/version/ for pages/version.py, /models-version/ for pages/models.py) on fresh
connections; the save is over when every worker has answered with the new code and no old
answer came for `quiet_seconds`, or after `edit_timeout`.
"""

from __future__ import annotations

import random
import re
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from . import stats
from .client import HOST, Pollers, Reply, fetch
from .config import Settings
from .procs import cpu_seconds, pss_mib, rss_mib
from .project import EDIT_VIEW, Editor, Target
from .servers import wrk_path
from .session import Session, warm


@dataclass
class Save:
    """What one save looked like from the client and in the server's log."""

    written: float
    first_fresh: float | None = None
    all_fresh: float | None = None  # when the last expected worker first answered fresh
    last_stale: float | None = None
    answers_after_fresh: int = 0
    stale: int = 0
    steps: dict[str, float] = field(default_factory=dict)  # log step -> seconds after save

    @property
    def latency(self) -> float | None:
        return None if self.first_fresh is None else self.first_fresh - self.written


def _log_steps(session: Session, since: float, until: float) -> dict[str, float]:
    """Seconds from the save to the first log line of each reload step."""
    found: dict[str, float] = {}
    for stamp, line in list(session.server.lines):
        if not since <= stamp <= until:
            continue
        for step, pattern in session.tool.phases.items():
            if step not in found and re.search(pattern, line):
                found[step] = round(stamp - since, 4)
    return found


def _follow_save(
    session: Session, editor: Editor, pollers: Pollers, settings: Settings, sink: list[Reply]
) -> Save:
    save = Save(written=editor.write())
    token = editor.token
    fresh_pids: set[int] = set()
    deadline = save.written + settings.edit_timeout
    pollers.active.set()
    while (now := time.monotonic()) < deadline:
        last = max(save.all_fresh or 0.0, save.last_stale or 0.0)
        if save.all_fresh is not None and now - last >= settings.quiet_seconds:
            break
        reply = pollers.take(timeout=0.02)
        if reply is None:
            continue
        sink.append(reply)
        if reply.sent < save.written:  # asked before the save: says nothing about it
            continue
        if reply.token == token:
            save.first_fresh = save.first_fresh or reply.received
            fresh_pids.add(reply.pid or 0)
            if save.all_fresh is None and len(fresh_pids) >= session.expected:
                save.all_fresh = reply.received
        if save.first_fresh is not None and reply.received > save.first_fresh:
            save.answers_after_fresh += 1
            if reply.ok and reply.token != token:
                save.stale += 1
                save.last_stale = reply.received
    save.steps = _log_steps(session, save.written, save.first_fresh or deadline)
    return save


def _collect(pollers: Pollers, seconds: float, sink: list[Reply]) -> None:
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        reply = pollers.take(timeout=min(left, 0.05))
        if reply is not None:
            sink.append(reply)


def spread(count: int) -> list[float]:
    """`count` fractions of [0, 1), one in each of `count` equal slices, in random order
    (seeded: a rerun makes the same pauses).

    The pause before a save shifts it against the once-a-second loops that decide a reload's
    latency (Apache's maintenance tick, uWSGI's, the peers' polls), which a server's last
    restart keeps in step with the save before. Uniform random pauses leave a dozen saves
    crowding one part of that second, differently for each tool: one pause per slice covers
    the whole second every time."""
    rng = random.Random(count)
    fractions = [(i + rng.random()) / count for i in range(count)]
    rng.shuffle(fractions)
    return fractions


def _saves(
    session: Session,
    editor: Editor,
    settings: Settings,
    count: int,
    *,
    steady: bool,
    threads: int,
    interval: float,
) -> tuple[list[Save], list[Reply]]:
    """`count` saves; with `steady` the load runs throughout, else only while a save is on."""
    replies: list[Reply] = []
    saves: list[Save] = []
    pause = settings.settle_seconds + settings.jitter_seconds
    bound = count * (settings.edit_timeout + pause + 1) + pause + 5
    with Pollers(session.port, editor.target.url, threads, interval, bound) as pollers:
        if steady:
            pollers.active.set()
        for fraction in spread(count):
            delay = settings.settle_seconds + fraction * settings.jitter_seconds
            _collect(pollers, delay, replies)
            saves.append(_follow_save(session, editor, pollers, settings, replies))
            if not steady:
                pollers.active.clear()
    return saves, replies


def _summary(saves: list[Save]) -> dict[str, Any]:
    latencies = [s.latency for s in saves if s.latency is not None]
    all_fresh = [s.all_fresh - s.written for s in saves if s.all_fresh is not None]
    steps: dict[str, list[float]] = {}
    for save in saves:
        for step, seconds in save.steps.items():
            steps.setdefault(step, []).append(seconds)
    return {
        "saves": len(saves),
        "timeouts": len(saves) - len(latencies),
        "median_s": stats.rounded(stats.median(latencies)),
        "p90_s": stats.rounded(stats.percentile(latencies, 90)),
        "all_fresh_median_s": stats.rounded(stats.median(all_fresh)),
        "incomplete": len(saves) - len(all_fresh),
        "samples_s": [stats.rounded(v) for v in latencies],
        "steps_median_s": {k: stats.rounded(stats.median(v)) for k, v in steps.items()},
    }


def latency(
    session: Session, settings: Settings, count: int, target: Target = EDIT_VIEW
) -> dict[str, Any]:
    saves, replies = _saves(
        session,
        session.editors[target],
        settings,
        count,
        steady=False,
        threads=settings.pollers,
        interval=settings.poll_interval,
    )
    kinds = Counter(r.error for r in replies if r.error is not None)
    after = sum(s.answers_after_fresh for s in saves)
    stale = sum(s.stale for s in saves)
    converge = [
        s.last_stale - s.first_fresh
        for s in saves
        if s.last_stale is not None and s.first_fresh is not None
    ]
    return {
        **_summary(saves),
        "file": target.file,
        # Processes that served the file's current code before the first save: a worker that
        # had not imported it yet would import the new code and look reloaded at once.
        "warmed_workers": len(session.warmed[target]),
        "stale": {
            "answers_after_fresh": after,
            "stale": stale,
            "stale_pct": stats.rounded(100 * stale / after if after else 0.0, 2),
            "saves_with_stale": len(converge),
            # How long old code was still served after the first fresh answer.
            "last_stale_after_fresh_max_s": stats.rounded(max(converge, default=0.0)),
        },
        # The pollers run while each save is followed, so across every restart it causes:
        # requests that failed, were refused or answered 5xx meanwhile are lost ones.
        "lost": {"requests": len(replies), "failed": sum(kinds.values()), "by_kind": dict(kinds)},
    }


SLOW_STARTED = "slow: started"
"""What the demo's /slow/ view prints as it begins."""


def busy(session: Session, settings: Settings, count: int, seconds: float) -> dict[str, Any]:
    """Save → fresh while a request of `seconds` (the demo's /slow/) is in flight at each
    save: what a server of one worker makes the developer wait. Also how that request ended:
    answered (with the code it began with) or lost."""
    editor = session.editor
    saves: list[Save] = []
    replies: list[Reply] = []
    slow: list[Reply | None] = []
    pause = settings.settle_seconds + settings.jitter_seconds
    bound = count * (settings.edit_timeout + pause + seconds + 5) + 5
    with Pollers(
        session.port, editor.target.url, settings.pollers, settings.poll_interval, bound
    ) as pollers:
        for fraction in spread(count):
            _collect(pollers, settings.settle_seconds + fraction * settings.jitter_seconds, [])
            answer: list[Reply] = []
            seen = len(session.server.lines)
            path = f"/slow/?s={seconds}"
            request = threading.Thread(
                target=_ask, args=(session.port, path, seconds + 30, answer), daemon=True
            )
            request.start()
            deadline = time.monotonic() + settings.edit_timeout
            while not _logged_since(session, seen, SLOW_STARTED) and time.monotonic() < deadline:
                time.sleep(0.005)
            saves.append(_follow_save(session, editor, pollers, settings, replies))
            pollers.active.clear()
            request.join(seconds + 35)
            slow.append(answer[0] if answer else None)
    kinds = Counter("no answer" if r is None else r.error for r in slow if r is None or not r.ok)
    return {
        **_summary(saves),
        "slow_s": seconds,
        "slow": {"requests": len(slow), "lost": sum(kinds.values()), "by_kind": dict(kinds)},
    }


def _ask(port: int, path: str, timeout: float, into: list[Reply]) -> None:
    into.append(fetch(port, path, timeout=timeout))


def _logged_since(session: Session, index: int, text: str) -> bool:
    """Whether a server log line from `index` on holds `text`."""
    return any(text in line for _, line in session.server.lines[index:])


def edits(session: Session, settings: Settings) -> dict[str, Any]:
    """Save → fresh for each kind of edit the project declares, in turn on one server."""
    return {
        kind: latency(session, settings, settings.real_edits, target)
        for kind, target in session.project.edits.items()
    }


def lost(session: Session, settings: Settings) -> dict[str, Any]:
    saves, replies = _saves(
        session,
        session.editor,
        settings,
        settings.lost_reloads,
        steady=True,
        threads=settings.load_threads,
        interval=settings.load_interval,
    )
    kinds = Counter(r.error for r in replies if r.error is not None)
    failed = sum(kinds.values())
    return {
        "reloads": len(saves),
        "requests": len(replies),
        "failed": failed,
        "failed_pct": stats.rounded(100 * failed / len(replies) if replies else 0.0, 3),
        "by_kind": dict(sorted(kinds.items())),
        "latency_under_load_median_s": _summary(saves)["median_s"],
    }


def idle(session: Session, settings: Settings, attempts: int = 3) -> dict[str, Any]:
    """CPU of every server process over a quiet period.

    A period in which a process started or ended (a restart nobody asked for: something else
    touched a watched file) is thrown away and measured again, up to `attempts` times.
    """
    time.sleep(settings.quiet_seconds)  # let the warm-up requests finish
    before = cpu_seconds(session.server.pid)
    time.sleep(settings.startup_burst_seconds)
    burst = cpu_seconds(session.server.pid) - before
    disturbed = 0
    for _ in range(attempts):
        pids = set(session.server.pids())
        before, began = cpu_seconds(session.server.pid), time.monotonic()
        time.sleep(settings.idle_seconds)
        used, seconds = cpu_seconds(session.server.pid) - before, time.monotonic() - began
        if set(session.server.pids()) == pids:
            break
        disturbed += 1
        warm(session.port, session.editor, session.expected, settings.edit_timeout)
    return {
        "seconds": round(seconds, 2),
        "cpu_s": round(used, 4),
        "processes": len(pids),
        "disturbed": disturbed,  # == attempts: every period saw a restart; cpu_s includes it
        "after_start_cpu_s": round(burst, 4),  # in the startup_burst_seconds before
    }


_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


def throughput(session: Session, settings: Settings) -> dict[str, Any]:
    wrk = wrk_path()
    if wrk is None:
        return {"status": "skipped", "reason": "wrk not installed"}
    connections = 2 * session.workers * 2  # enough to keep every worker busy
    url = f"http://{HOST}:{session.port}{session.editor.target.url}"

    def wrk_run(seconds: int) -> str:
        argv = [wrk, "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", url]
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=seconds + 30, check=True
        ).stdout

    if settings.wrk_warmup_seconds:
        wrk_run(settings.wrk_warmup_seconds)
    runs: list[float] = []
    errors = 0
    for _ in range(settings.wrk_runs):
        out = wrk_run(settings.wrk_seconds)
        match = _RPS.search(out)
        runs.append(float(match.group(1)) if match else 0.0)
        for pattern in (_NON_2XX, _SOCKET_ERRORS):
            found = pattern.search(out)
            errors += sum(int(n) for n in found.groups()) if found else 0
    # Workers are the processes that answer /version/; the rest (arbiter, Apache) is overhead.
    workers = warm(session.port, session.editor, session.expected, 10.0)
    rss = [v for v in (rss_mib(pid) for pid in workers) if v is not None]
    return {
        "rps_median": stats.rounded(stats.median(runs), 1),
        # Other work on a shared machine only ever lowers a run: the best run is the estimate
        # least disturbed by it.
        "rps_best": max(runs, default=None),
        "rps_runs": runs,
        "wrk_errors": errors,
        "connections": connections,
        "rss_mib_per_worker": stats.rounded(stats.median(rss), 1),
        "pss_mib_total": round(pss_mib(session.server.pids()), 1),
        "processes": len(session.server.pids()),
    }
