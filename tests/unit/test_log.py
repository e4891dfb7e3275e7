"""The reloader logger after the application configured logging (Django's LOGGING)."""

from __future__ import annotations

import io
import logging
import logging.config
from collections.abc import Iterator

import pytest

from reloader import log


@pytest.fixture
def fresh_logging() -> Iterator[None]:
    """Puts the loggers back. (Their handlers are cleared by `make_visible_now`: pytest adds
    its own to the root logger, and its own stderr, only once the test runs.)"""
    root = logging.getLogger()
    saved = (root.level, log.logger.handlers[:], log.logger.propagate)
    yield
    root.setLevel(saved[0])
    log.logger.handlers[:], log.logger.propagate = saved[1:]
    log.logger.disabled = False
    log.logger.setLevel(logging.NOTSET)


def make_visible_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    log.logger.handlers[:] = []
    log.make_visible()


def _configure(**extra: object) -> io.StringIO:
    users = io.StringIO()
    logging.config.dictConfig(
        {
            "version": 1,
            "formatters": {"user": {"format": "USER %(name)s: %(message)s"}},
            "handlers": {
                "mine": {"class": "logging.StreamHandler", "stream": users, "formatter": "user"}
            },
            **extra,
        }
    )
    return users


def test_disabled_by_dictconfig_the_failure_still_reaches_the_users_handlers(
    fresh_logging: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    make_visible_now(monkeypatch)
    users = _configure(root={"handlers": ["mine"], "level": "INFO"})
    assert log.logger.disabled  # what Django's LOGGING did to us
    log.log_failure("could not load x [error id 12345678]")
    assert users.getvalue() == "USER reloader: could not load x [error id 12345678]\n"
    assert capsys.readouterr().err == "", "not twice"


def test_without_root_handlers_our_own_stderr_handler_comes_back(
    fresh_logging: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    make_visible_now(monkeypatch)
    _configure(loggers={"django": {"handlers": ["mine"]}})
    log.log_failure("could not load x")
    assert "[ERROR] reloader: could not load x" in capsys.readouterr().err


def test_a_level_that_drops_errors_still_leaves_the_failure_on_stderr(
    fresh_logging: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    make_visible_now(monkeypatch)
    users = _configure(loggers={"reloader": {"handlers": ["mine"], "level": "CRITICAL"}})
    log.log_failure("could not load x")
    assert "could not load x" in capsys.readouterr().err
    assert users.getvalue() == ""
