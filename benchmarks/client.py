"""HTTP client side: one request, and a pool of pollers that hammer one page on 127.0.0.1.

The pages answer "<VERSION> pid=<pid>", alone (the demo's) or inside an HTML page (a Wagtail
page): which code a process serves, and which process it is.

Each request opens a new connection, so the kernel hands it to whichever worker accepts
first: that spreads requests over all workers (keep-alive would pin a poller to one worker).
"""

from __future__ import annotations

import http.client
import queue
import re
import threading
import time
from dataclasses import dataclass

HOST = "127.0.0.1"  # loopback only, by design
_SERVED = re.compile(rb"([\w.-]+) pid=(\d+)")
REDIRECTS = 5
"""307s and 308s followed, as a browser does: a restarting worker sends a request it should
not answer with its old code to ask again."""


@dataclass(frozen=True)
class Reply:
    sent: float
    received: float
    status: int | None  # None when no HTTP answer came
    token: str  # the VERSION served, "" when none
    pid: int | None
    error: str | None  # refused | reset | timeout | http-5xx | http-4xx | oserror

    @property
    def ok(self) -> bool:
        return self.error is None


def fetch(port: int, path: str, timeout: float = 5.0) -> Reply:
    sent = time.monotonic()
    status: int | None = None
    body = b""
    error: str | None = None
    for _ in range(REDIRECTS + 1):
        conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
        try:
            conn.request("GET", path, headers={"Connection": "close"})
            response = conn.getresponse()
            status, body = response.status, response.read()
        except ConnectionRefusedError:
            error = "refused"
        except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected):
            error = "reset"
        except TimeoutError:
            error = "timeout"
        except (OSError, http.client.HTTPException):
            error = "oserror"
        finally:
            conn.close()
        location = response.getheader("Location") if status in (307, 308) else None
        if error is not None or not location:
            break
        path = location
    if status is not None and status >= 400:
        error = f"http-{status // 100}xx"
    match = _SERVED.search(body) if status == 200 else None
    return Reply(
        sent=sent,
        received=time.monotonic(),
        status=status,
        token=match.group(1).decode("ascii", "replace") if match else "",
        pid=int(match.group(2)) if match else None,
        error=error,
    )


class Pollers:
    """`count` threads, each requesting `path` every `interval` s while active, feeding a queue.

    Bounded: every thread stops at `stop()` or after `max_seconds`, whichever comes first.
    """

    def __init__(
        self, port: int, path: str, count: int, interval: float, max_seconds: float
    ) -> None:
        self.port = port
        self.path = path
        self.interval = interval
        self.replies: queue.Queue[Reply] = queue.Queue()
        self.active = threading.Event()
        self._stop = threading.Event()
        self._deadline = time.monotonic() + max_seconds
        self._threads = [
            threading.Thread(target=self._run, args=(i, count), daemon=True, name=f"poll-{i}")
            for i in range(count)
        ]

    def __enter__(self) -> Pollers:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self.active.set()  # wake paused threads so they see the stop
        for thread in self._threads:
            thread.join(timeout=10.0)

    def _run(self, index: int, count: int) -> None:
        # Stagger the threads so together they sample every interval/count seconds.
        time.sleep(self.interval * index / count)
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            self.active.wait(timeout=1.0)
            if self._stop.is_set() or not self.active.is_set():
                continue
            began = time.monotonic()
            self.replies.put(fetch(self.port, self.path))
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - began)))

    def take(self, timeout: float) -> Reply | None:
        try:
            return self.replies.get(timeout=timeout)
        except queue.Empty:
            return None

    def drain(self) -> list[Reply]:
        items = []
        while True:
            try:
                items.append(self.replies.get_nowait())
            except queue.Empty:
                return items
