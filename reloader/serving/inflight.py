"""The requests a serving process is answering, and how it stops with them in flight.

A worker that stops for a reload finishes its requests first, and that is right for an
ordinary response. An endless one (server-sent events, django-browser-reload's stream, a long
poll) never finishes: the server waits for its graceful timeout, serving nothing new, and the
browser tab that holds the stream hears of the restart only then. So, once a stop begins:

- a response of unknown length that is being streamed ends: where the server lets us reach
  the client's connection (gunicorn), it is shut down at once, so the client sees the end now
  and reconnects (to a fresh process) while the application is still waiting for its next
  chunk; either way iteration stops at that next chunk, which is not sent, and the
  application's `close()` runs (generators' `finally`, Django's `request_finished`);
- a response of known length (a `Content-Length`, a list body, Django's non-streaming
  `HttpResponse`) is left to finish: cutting it would hand the client a broken body;
- a request on a kept-alive connection, read once the stop began, is not served the code the
  process is stopping for: gunicorn 27's gthread worker still reads them for two seconds, and
  a browser reuses its connections. It gets a `307` to the same URL, which browsers,
  `EventSource` and HTTP libraries follow on a new connection (the server closes this one),
  and only a fresh process accepts new connections. The first request of a connection was
  sent before the stop (the connection was accepted before it) and is served;
- except in a process that knows its code is older than a save (`outdate`), once another
  process may have answered with the new code: every request it begins then gets that `307`,
  the first of a connection too, since it may have been sent after such an answer (a late
  watcher, see `peers`: the request whose look at the last restart found this process behind,
  those gunicorn's gthread worker read before its loop looked at `alive`). Before that, what
  it begins was sent before any fresh answer, and is served;
- the server may start the process's replacement at once rather than when it exits (see
  `hand_over`), so that what is still running does not keep new requests waiting;
- whatever is still running after the grace is logged, and the process exits, whatever its
  threads are doing (a request stuck in a slow call, a non-daemon thread, an executor that the
  interpreter would join at exit).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import socket
import sys
import time
import urllib.parse
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..threads import StopFlag, allocate_rlock, start_thread

__all__ = ["InFlight"]

logger = logging.getLogger("reloader")

WSGIApp = Callable[..., Any]


@dataclass
class _Request:
    method: str
    path: str
    started: float
    """`time.monotonic()` when the application was called."""
    length_known: bool = False
    """The response declared its length: it must be sent whole."""
    streaming: bool = field(default=False)
    """Its body is an iterator of unknown length: it may end at any chunk."""
    connection: socket.socket | None = None
    """The client's connection, where the server puts it in the environ."""
    late: bool = False
    """It began once the stop had begun."""

    def describe(self, now: float) -> str:
        return f"{self.method} {self.path} ({now - self.started:.1f} s)"


class InFlight:
    """Wraps one process's application; `stop()` begins the stop described above."""

    def __init__(self) -> None:
        self._lock = allocate_rlock()
        """Reentrant: a stop handler takes it in the thread it interrupted (a sync worker's,
        which takes it as each request begins and ends)."""
        self._open: dict[int, _Request] = {}
        self._ids = itertools.count()
        self._kept_alive: weakref.WeakSet[socket.socket] = weakref.WeakSet()
        """Connections that were answered once already."""
        self.stopping = False
        self._outdated: Callable[[], bool] | None = None
        """Once this process holds code older than a save: whether it may begin no more
        requests (see `outdate`)."""
        self._when_idle: Callable[[], None] | None = None
        """Called once no request is left (see `hand_over`)."""
        self._handed_over = False

    def wrap(self, app: WSGIApp) -> WSGIApp:
        def tracked_app(environ: Mapping[str, Any], start_response: Any) -> Iterable[bytes]:
            connection = _connection(environ)
            if self._outdated is not None and self._outdated():
                return _elsewhere(environ, start_response)
            if connection is not None:
                if self.stopping and connection in self._kept_alive:
                    return _elsewhere(environ, start_response)
                self._kept_alive.add(connection)
            request = _Request(
                environ.get("REQUEST_METHOD", "GET"),
                environ.get("PATH_INFO", "") or "/",
                time.monotonic(),
                connection=connection,
                late=self.stopping,
            )

            def declaring_start_response(status: str, headers: Any, *exc_info: Any) -> Any:
                request.length_known = any(k.lower() == "content-length" for k, _ in headers)
                return start_response(status, headers, *exc_info)

            key = next(self._ids)
            with self._lock:
                self._open[key] = request
            try:
                result = app(environ, declaring_start_response)
            except BaseException:
                self._finished(key)
                raise
            if _is_file_wrapper(result, environ):
                # The server sends it with sendfile only if it sees its own wrapper; a file
                # has a length, so it is never ended early anyway.
                self._finished(key)
                file: Iterable[bytes] = result
                return file
            request.streaming = not isinstance(result, (list, tuple)) and getattr(
                result, "streaming", True
            )
            return _Tracked(result, request, key, self)

        return tracked_app

    def _finished(self, key: int) -> None:
        with self._lock:
            self._open.pop(key, None)
            done = None if self._open else self._take_when_idle()
        if done is not None:
            done()

    def _take_when_idle(self) -> Callable[[], None] | None:
        done, self._when_idle = self._when_idle, None
        return done

    def hand_over(self, replace: Callable[[], Callable[[], None] | None]) -> None:
        """Once the stop began: if requests are still in flight, call `replace` (which starts
        this process's replacement now) and, once they have ended or are cut at the grace,
        what it returned. Once: a process has one replacement."""
        with self._lock:
            running = list(self._open.values())
            if not running or self._handed_over:
                return
            self._handed_over = True
        done = replace()
        if done is None:
            return
        now = time.monotonic()
        logger.info(
            "starting the replacement of process %d now; it finishes %s",
            os.getpid(),
            ", ".join(r.describe(now) for r in running),
        )
        with self._lock:
            if self._open:
                self._when_idle, done = done, None
        if done is not None:
            done()

    def outdate(self, answered_elsewhere: Callable[[], bool] | None = None) -> None:
        """This process's code is older than a save. From now on, once `answered_elsewhere()`
        is true (another process may have answered with the new code; always, when not
        given), every request is sent to ask again, whatever its connection. Call it before
        the process tells its peers that it no longer serves."""
        if answered_elsewhere is None:
            self._outdated = _always
            return
        answered = False

        def outdated() -> bool:
            nonlocal answered  # once true, for good: an answer given stays given
            answered = answered or answered_elsewhere()
            return answered

        self._outdated = outdated

    def streams_open(self) -> bool:
        """Whether a response of unknown length is being streamed now (an event stream)."""
        with self._lock:
            return any(r.streaming and not r.length_known for r in self._open.values())

    def ends_now(self, request: _Request) -> bool:
        return self.stopping and request.streaming and not request.length_known

    def stop(self, grace: float) -> None:
        """Begin the stop: streams end at their next chunk; after `grace` seconds the process
        exits with what is still running logged. Safe to call more than once."""
        with self._lock:
            if self.stopping:
                return
            self.stopping = True
            streams = [r for r in self._open.values() if r.streaming and not r.length_known]
        for request in streams:
            if request.connection is not None:
                with contextlib.suppress(OSError):
                    request.connection.shutdown(socket.SHUT_RDWR)
        if streams:
            now = time.monotonic()
            logger.info(
                "ending %d streaming response(s): %s",
                len(streams),
                ", ".join(r.describe(now) for r in streams),
            )
        start_thread(lambda: self._end_after(grace))

    def _end_after(self, grace: float) -> None:
        StopFlag().wait(grace)
        now = time.monotonic()
        with self._lock:
            running = [r.describe(now) for r in self._open.values()]
        cut = f"; cut {', '.join(running)}" if running else ""
        logger.warning(
            "process %d still running %.1f s after it began to stop: exiting%s",
            os.getpid(),
            grace,
            cut,
        )
        with self._lock:
            done = self._take_when_idle()
        if done is not None:
            done()
        for handler in logger.handlers:
            with contextlib.suppress(Exception):
                handler.flush()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(0)


class _Tracked:
    """The response iterable as the server sees it."""

    def __init__(self, result: Iterable[bytes], request: _Request, key: int, owner: InFlight):
        self._result = result
        self._request = request
        self._key = key
        self._owner = owner

    def __iter__(self) -> Iterator[bytes]:
        chunks = iter(self._result)
        # Checked before asking for the next chunk and again once it came, which a stream may
        # take a while to produce: a chunk made once the stop began is not sent, so the client
        # sees the end, as it does where the connection is shut down (a "reload" would have
        # django-browser-reload's tab reload twice: for it, then for the new process). But a
        # stream that began during the stop sends its first chunk: the ping with which
        # django-browser-reload's tab learns what process served its page. A tab reloaded by
        # this process, whose stream first heard from the next one, would take that for the
        # process of its page and keep the old page.
        first = self._request.late
        while first or not self._owner.ends_now(self._request):
            chunk = next(chunks, None)
            if chunk is None or (not first and self._owner.ends_now(self._request)):
                return
            first = False
            yield chunk

    def close(self) -> None:
        self._owner._finished(self._key)
        close = getattr(self._result, "close", None)
        if callable(close):
            close()


def _always() -> bool:
    return True


def _elsewhere(environ: Mapping[str, Any], start_response: Any) -> list[bytes]:
    """The same request, asked again: the URL as the client sent it where the server keeps it
    (gunicorn's RAW_URI, mod_wsgi's and uWSGI's REQUEST_URI), else rebuilt from the environ."""
    target = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if not target:
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        # WSGI strings carry the request's bytes as latin-1: quote those bytes.
        target = urllib.parse.quote(path.encode("latin-1", "replace"), safe="/:@!$&'()*+,;=~")
        if environ.get("QUERY_STRING"):
            target += "?" + environ["QUERY_STRING"]
    _drain(environ)
    body = b"This process is restarting for new code: ask again.\n"
    start_response(
        "307 Temporary Redirect",
        [
            ("Location", target or "/"),
            ("Cache-Control", "no-store"),
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
        ],
    )
    return [body]


_DRAIN_LIMIT = 16 << 20
"""The largest request body read before the `307` (bytes): the client sends it again."""


def _drain(environ: Mapping[str, Any]) -> None:
    """Read the request's body, unread: a server that closes a connection with data still
    unread makes the kernel reset it, and the client may lose the `307` with it."""
    stream = environ.get("wsgi.input")
    try:
        left = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return
    if stream is None or not 0 < left <= _DRAIN_LIMIT:
        return
    with contextlib.suppress(Exception):  # a client gone or a body cut short: nothing to do
        while left > 0 and (chunk := stream.read(min(left, 1 << 16))):
            left -= len(chunk)


CONNECTION_KEYS = ("gunicorn.socket",)
"""Environ keys under which servers pass the client's socket."""


def _connection(environ: Mapping[str, Any]) -> socket.socket | None:
    for key in CONNECTION_KEYS:
        candidate = environ.get(key)
        if isinstance(candidate, socket.socket):
            return candidate
    return None


def _is_file_wrapper(result: object, environ: Mapping[str, Any]) -> bool:
    wrapper = environ.get("wsgi.file_wrapper")
    return isinstance(wrapper, type) and isinstance(result, wrapper)
