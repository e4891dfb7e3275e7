"""The response wrapper's rule: what ends at a stop, what is left to finish."""

from __future__ import annotations

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


def test_a_request_that_arrives_while_stopping_is_sent_to_ask_again() -> None:
    inflight = InFlight()
    called = []
    wrapped = inflight.wrap(lambda environ, start_response: called.append(1) or [b"old"])
    inflight.stop(NEVER)
    seen: list[Any] = []
    environ = {"PATH_INFO": "/caf\xc3\xa9/", "QUERY_STRING": "a=1"}
    body = wrapped(environ, lambda status, headers: seen.append((status, dict(headers))))
    assert not called and b"old" not in b"".join(body)
    status, headers = seen[0]
    assert status.startswith("307") and headers["Location"] == "/caf%C3%A9/?a=1"
    wrapped({"RAW_URI": "/x?y", "PATH_INFO": "/x"}, lambda s, h: seen.append(dict(h)))
    assert seen[1]["Location"] == "/x?y"
