"""The response wrapper's rule: what ends at a stop, what is left to finish."""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator
from typing import Any

from reloader.serving.inflight import InFlight

NEVER = 1e9
"""A grace the test never reaches: the exit after it is not what is tested here."""


class Body:
    """A response iterable that records how far it was read and whether it was closed."""

    def __init__(self, chunks: int | None, streaming: bool | None = None) -> None:
        self.chunks = chunks
        self.read = 0
        self.closed = False
        if streaming is not None:
            self.streaming = streaming

    def __iter__(self) -> Iterator[bytes]:
        while self.chunks is None or self.read < self.chunks:
            self.read += 1
            yield b"x"

    def close(self) -> None:
        self.closed = True


def serve(body: object, headers: list[tuple[str, str]] | None = None) -> tuple[InFlight, Any]:
    inflight = InFlight()

    def app(environ: dict[str, Any], start_response: Any) -> object:
        start_response("200 OK", headers or [])
        return body

    wrapped = inflight.wrap(app)
    result = wrapped({"REQUEST_METHOD": "GET", "PATH_INFO": "/s"}, lambda *a: None)
    return inflight, result


def test_an_endless_stream_ends_at_its_next_chunk_and_is_closed() -> None:
    body = Body(None)
    inflight, result = serve(body)
    chunks = iter(result)
    assert next(chunks) == b"x" and next(chunks) == b"x"
    inflight.stop(NEVER)
    assert list(chunks) == []
    assert body.read == 2
    result.close()
    assert body.closed


def test_a_response_of_known_length_is_sent_whole() -> None:
    body = Body(5)
    inflight, result = serve(body, [("Content-Length", "5")])
    chunks = iter(result)
    next(chunks)
    inflight.stop(NEVER)
    assert len(list(chunks)) == 4


def test_a_django_response_that_is_not_streaming_is_sent_whole() -> None:
    body = Body(3, streaming=False)
    inflight, result = serve(body)
    chunks = iter(result)
    next(chunks)
    inflight.stop(NEVER)
    assert len(list(chunks)) == 2


def test_a_list_body_is_sent_whole() -> None:
    inflight, result = serve([b"a", b"b", b"c"])
    chunks = iter(result)
    next(chunks)
    inflight.stop(NEVER)
    assert list(chunks) == [b"b", b"c"]


def test_a_file_wrapper_reaches_the_server_as_itself() -> None:
    class FileWrapper:
        def __init__(self, *args: object) -> None:
            pass

    inflight = InFlight()
    wrapper = FileWrapper()
    wrapped = inflight.wrap(lambda environ, start_response: wrapper)
    assert wrapped({"wsgi.file_wrapper": FileWrapper}, lambda *a: None) is wrapper


def test_a_kept_alive_connection_read_while_stopping_is_sent_to_ask_again() -> None:
    inflight = InFlight()
    wrapped = inflight.wrap(lambda environ, start_response: [b"old"])
    reused, fresh = socket.socket(), socket.socket()
    try:
        list(wrapped({"gunicorn.socket": reused}, lambda *a: None))
        inflight.stop(NEVER)
        seen: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]]) -> None:
            seen.append((status, dict(headers)))

        environ = {"gunicorn.socket": reused, "PATH_INFO": "/caf\xc3\xa9/", "QUERY_STRING": "a=1"}
        assert b"old" not in b"".join(wrapped(environ, start_response))
        status, headers = seen[-1]
        assert status.startswith("307") and headers["Location"] == "/caf%C3%A9/?a=1"
        raw = {"gunicorn.socket": reused, "RAW_URI": "/x?y", "PATH_INFO": "/x"}
        wrapped(raw, start_response)
        assert seen[-1][1]["Location"] == "/x?y"
        # The first request of a connection was sent before the stop: it is served.
        assert list(wrapped({"gunicorn.socket": fresh}, start_response)) == [b"old"]
        assert list(wrapped({}, start_response)) == [b"old"]
    finally:
        reused.close()
        fresh.close()


def test_outdated_code_answers_until_another_process_may_have_answered_with_new_code() -> None:
    """Then every request is sent to ask again, even the first of a connection: it may have
    been sent after that answer. Its body is read first, so that the 307 is not lost in a
    reset connection."""
    called: list[str] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        called.append(environ["PATH_INFO"])
        return [b"old"]

    inflight = InFlight()
    wrapped = inflight.wrap(app)
    fresh_elsewhere = [False]
    inflight.outdate(lambda: fresh_elsewhere.pop())
    assert list(wrapped({"PATH_INFO": "/before"}, lambda *a: None)) == [b"old"]
    fresh_elsewhere[:] = [True]
    seen: list[Any] = []
    body = io.BytesIO(b"a=1" * 50_000)
    fresh = socket.socket()
    try:
        environ = {
            "gunicorn.socket": fresh,
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/form/",
            "CONTENT_LENGTH": str(len(body.getvalue())),
            "wsgi.input": body,
        }
        answer = b"".join(wrapped(environ, lambda status, headers: seen.append((status, headers))))
    finally:
        fresh.close()
    assert b"old" not in answer and called == ["/before"]
    status, headers = seen[-1]
    assert status.startswith("307") and dict(headers)["Location"] == "/form/"
    assert body.read() == b""
    # Asked once: an answer given elsewhere stays given (the list is empty now).
    wrapped({"PATH_INFO": "/again"}, lambda *a: None)
    assert called == ["/before"]


def test_outdated_code_with_no_peers_known_answers_nothing() -> None:
    inflight = InFlight()
    wrapped = inflight.wrap(lambda environ, start_response: [b"old"])
    inflight.outdate()
    assert b"old" not in b"".join(wrapped({"PATH_INFO": "/"}, lambda *a: None))


def test_a_replacement_is_asked_for_once_and_given_back_when_the_last_request_ends() -> None:
    body = Body(None)
    inflight, result = serve(body)
    asked: list[str] = []

    def replace() -> Any:
        asked.append("now")
        return lambda: asked.append("done")

    inflight.stop(NEVER)
    inflight.hand_over(replace)
    inflight.hand_over(replace)  # a second SIGTERM: still one replacement
    assert asked == ["now"]
    assert list(result) == [], "an endless stream sends nothing once the stop began"
    result.close()
    assert asked == ["now", "done"]


def test_no_replacement_is_asked_for_with_nothing_in_flight() -> None:
    inflight = InFlight()
    inflight.stop(NEVER)
    asked: list[str] = []

    def replace() -> None:
        asked.append("now")

    inflight.hand_over(replace)
    assert asked == []


def test_a_chunk_made_once_the_stop_began_is_not_sent() -> None:
    """As a woken stream makes one (django-browser-reload's "reload", which would reload its tab
    a second time once it sees the new process): the client sees the end instead."""
    inflight = InFlight()

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b"ping"
        inflight.stop(NEVER)  # while the stream waited for its next chunk
        yield b"reload"

    assert list(inflight.wrap(app)({}, lambda *a: None)) == [b"ping"]


def test_a_stream_begun_during_the_stop_sends_its_first_chunk_only() -> None:
    """django-browser-reload's first ping names the process that served the tab's page: a
    tab reloaded while this process stopped must hear it before the next process's."""
    inflight = InFlight()
    inflight.stop(NEVER)

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b"ping old"
        yield b"reload"

    assert list(inflight.wrap(app)({}, lambda *a: None)) == [b"ping old"]
