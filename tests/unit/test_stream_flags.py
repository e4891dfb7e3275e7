"""The flags event streams wait on (`reloader.integrations.stream_flags`), over a module shaped
like django-browser-reload's views: a flag, and the timer its receiver starts."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from types import ModuleType

import pytest

from reloader.integrations.stream_flags import StreamFlag

NAME = "fake_browser_reload_views"
FLAG = StreamFlag(NAME, "should_reload_event", "reload_timer")
LATER_S = 60.0
"""The fake receiver's debounce: longer than any test, so only the code under test raises."""


@pytest.fixture
def views() -> Iterator[ModuleType]:
    module = ModuleType(NAME)
    module.should_reload_event = threading.Event()  # type: ignore[attr-defined]
    module.reload_timer = None  # type: ignore[attr-defined]
    sys.modules[NAME] = module
    yield module
    timer = module.reload_timer  # type: ignore[attr-defined]
    if timer is not None:
        timer.cancel()
    del sys.modules[NAME]


def trigger_reload_soon(views: ModuleType) -> threading.Timer:
    timer = threading.Timer(LATER_S, views.should_reload_event.set)
    views.reload_timer = timer  # type: ignore[attr-defined]
    timer.start()
    return timer


def test_hurrying_raises_at_once_what_the_timer_would_raise(views: ModuleType) -> None:
    timer = trigger_reload_soon(views)
    FLAG.hurry()
    assert views.should_reload_event.is_set()
    assert timer.finished.is_set(), "the timer would raise it a second time"


def test_hurrying_raises_nothing_that_no_receiver_asked_for(views: ModuleType) -> None:
    FLAG.hurry()
    assert not views.should_reload_event.is_set()
    trigger_reload_soon(views).cancel()  # a timer that is done: its stream was told
    FLAG.hurry()
    assert not views.should_reload_event.is_set()


def test_lowering_cancels_the_timer_too(views: ModuleType) -> None:
    timer = trigger_reload_soon(views)
    views.should_reload_event.set()
    FLAG.lower()
    assert not views.should_reload_event.is_set() and timer.finished.is_set()


def test_raising_wakes_a_waiting_stream(views: ModuleType) -> None:
    woke = threading.Event()
    waiter = threading.Thread(target=lambda: views.should_reload_event.wait(LATER_S) and woke.set())
    waiter.start()
    FLAG.raise_()
    waiter.join(LATER_S)
    assert woke.is_set()


def test_a_module_not_imported_is_left_alone() -> None:
    absent = StreamFlag("no_such_module_here", "should_reload_event", "reload_timer")
    absent.hurry()
    absent.lower()
    absent.raise_()
    assert "no_such_module_here" not in sys.modules
