"""Options: every bad value stops startup with the variable's name and what it accepts."""

from __future__ import annotations

import pytest

from reloader.settings import SETTINGS, ConfigError, ShowErrors, read_options


def test_defaults_when_nothing_is_set() -> None:
    options = read_options({}, environ={})
    assert options.enabled is True
    assert options.extra_files == ()
    assert options.show_errors is ShowErrors.AUTO
    assert options.polling is False
    assert options.target is None


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("RELOADER_ENABLED", "maybe"),
        ("RELOADER_POLLING", "2"),
        ("RELOADER_SHOW_ERRORS", "perhaps"),
        ("RELOADER_APP", "my-site.wsgi:application"),
        ("RELOADER_APP", "mysite.wsgi:app:extra"),
    ],
)
def test_bad_environment_value_names_variable_and_accepted_values(
    variable: str, value: str
) -> None:
    setting = next(s for s in SETTINGS if s.env == variable)
    with pytest.raises(ConfigError) as info:
        read_options({}, environ={variable: value})
    message = str(info.value)
    assert variable in message
    assert repr(value) in message
    assert setting.accepts in message


@pytest.mark.parametrize("text", ["0", "false", "No", " OFF "])
def test_false_spellings_turn_reloading_off(text: str) -> None:
    assert read_options({}, environ={"RELOADER_ENABLED": text}).enabled is False


def test_keywords_win_over_environment() -> None:
    options = read_options(
        {"enabled": False, "extra_files": [".env"]},
        environ={"RELOADER_ENABLED": "1", "RELOADER_EXTRA_FILES": "other"},
    )
    assert options.enabled is False
    assert options.extra_files == (".env",)


def test_paths_split_on_pathsep() -> None:
    options = read_options({}, environ={"RELOADER_EXTRA_FILES": ".env:config/*.toml:"})
    assert options.extra_files == (".env", "config/*.toml")


def test_show_errors_accepts_booleans_and_auto() -> None:
    assert read_options({"show_errors": True}, environ={}).show_errors is ShowErrors.ALWAYS
    assert read_options({}, environ={"RELOADER_SHOW_ERRORS": "0"}).show_errors is ShowErrors.NEVER
    assert read_options({}, environ={"RELOADER_SHOW_ERRORS": "auto"}).show_errors is ShowErrors.AUTO


def test_unknown_or_mistyped_keyword_is_an_error() -> None:
    with pytest.raises(ConfigError, match="extra_file"):
        read_options({"extra_file": ".env"}, environ={})
    with pytest.raises(ConfigError, match="enabled"):
        read_options({"enabled": "sometimes"}, environ={})


def test_grace_is_seconds_above_zero() -> None:
    assert read_options({}, {}).grace == 5.0
    assert read_options({}, {"RELOADER_GRACE": "2.5"}).grace == 2.5
    assert read_options({"grace": 1}, {}).grace == 1.0
    for bad in ("0", "-1", "soon", "nan", "inf"):
        with pytest.raises(ConfigError, match=r"RELOADER_GRACE.*greater than 0"):
            read_options({}, {"RELOADER_GRACE": bad})
    with pytest.raises(ConfigError, match="grace"):
        read_options({"grace": True}, {})
