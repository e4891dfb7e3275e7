import importlib
import os
import sys
import time
from collections.abc import Iterator

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import translation

from . import models
from .version import VERSION

PAGES = ["version", "models-version", "hello", "print", "translate", "lazy", "slow", "stream"]


def text(body: str) -> HttpResponse:
    return HttpResponse(body, content_type="text/plain; charset=utf-8")


def index(request: HttpRequest) -> HttpResponse:
    links = "".join(f'<li><a href="/{name}/">/{name}/</a></li>' for name in PAGES)
    return HttpResponse(
        f"<!doctype html><title>reloader demo</title><h1>reloader demo</h1><ul>{links}</ul>"
    )


def version(request: HttpRequest) -> HttpResponse:
    return text(f"{VERSION} pid={os.getpid()}")


def models_version(request: HttpRequest) -> HttpResponse:
    return text(f"{models.VERSION} pid={os.getpid()}")


def hello(request: HttpRequest) -> HttpResponse:
    return render(request, "pages/hello.html", {"pid": os.getpid(), "version": VERSION})


def print_view(request: HttpRequest) -> HttpResponse:
    # Deliberately no flush=True: output must still reach a piped stdout promptly.
    print(f"PRINT-MARKER {request.GET.get('t', '')}")
    return text("ok")


def translate(request: HttpRequest) -> HttpResponse:
    with translation.override("fr"):
        return text(translation.gettext("Hello from the demo"))


def lazy(request: HttpRequest) -> HttpResponse:
    # First imported here, at request time, so the reloader must notice late imports.
    module = importlib.import_module("pages.lazy")
    return text(module.LAZY)


def slow(request: HttpRequest) -> HttpResponse:
    seconds = float(request.GET.get("s", "2"))
    # Flushed so tests can tell the request is in flight before they edit code.
    sys.stderr.write(f"slow: started pid={os.getpid()}\n")
    sys.stderr.flush()
    time.sleep(seconds)
    return text(f"slept {seconds} {VERSION} pid={os.getpid()}")


def stream(request: HttpRequest) -> StreamingHttpResponse:
    """Server-sent events that never end by themselves, as a live-reload or chat stream."""
    pid = os.getpid()

    def ticks() -> Iterator[bytes]:
        try:
            n = 0
            while True:
                yield f"data: tick {n} {VERSION} pid={pid}\n\n".encode()
                n += 1
                time.sleep(0.5)
        finally:
            # Runs when the server closes the response: the client is gone, or a reload
            # ended the stream.
            print(f"STREAM-CLOSED pid={pid}")

    return StreamingHttpResponse(ticks(), content_type="text/event-stream")
