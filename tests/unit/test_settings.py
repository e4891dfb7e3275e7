"""Options: every bad value stops startup with the variable's name and what it accepts."""

from __future__ import annotations

import pytest

from reloader.settings import SETTINGS, ConfigError, ShowErrors, read_options, unknown_variables


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


def test_trusted_hosts_from_environment_and_keyword() -> None:
    environ = {"RELOADER_TRUSTED_HOSTS": "Dev.Example.test., .lan.example,[::1]"}
    assert read_options({}, environ=environ).trusted_hosts == (
        "dev.example.test",
        ".lan.example",
        "[::1]",
    )
    options = read_options({"trusted_hosts": ["box.example"]}, environ={})
    assert options.trusted_hosts == ("box.example",)


@pytest.mark.parametrize("value", ["*", "dev.example.test:8000", "a b", "http://dev.example"])
def test_trusted_hosts_reject_star_ports_and_urls(value: str) -> None:
    with pytest.raises(ConfigError, match="RELOADER_TRUSTED_HOSTS") as info:
        read_options({}, environ={"RELOADER_TRUSTED_HOSTS": value})
    assert "not '*'" in str(info.value)
    with pytest.raises(ConfigError, match="trusted_hosts"):
        read_options({"trusted_hosts": [value]}, environ={})


@pytest.mark.parametrize(
    "variable",
    ["RELOADER_ENABLED", "RELOADER_POLLING", "RELOADER_SHOW_ERRORS", "RELOADER_APP"],
)
def test_an_empty_value_is_no_yes_or_no(variable: str) -> None:
    """`RELOADER_ENABLED=` reads as 'on' in one shell script and 'off' in another."""
    with pytest.raises(ConfigError, match=f"{variable}=''.*unset it for the default"):
        read_options({}, environ={variable: ""})


def test_an_empty_list_is_an_empty_list() -> None:
    environ = {"RELOADER_EXTRA_FILES": "", "RELOADER_IGNORE": " ", "RELOADER_TRUSTED_HOSTS": ""}
    options = read_options({}, environ=environ)
    assert options.extra_files == options.ignore == options.trusted_hosts == ()


def test_a_misspelled_variable_is_named_with_the_closest_known_one() -> None:
    environ = {"RELOADER_SHOW_ERROR": "1", "RELOADER_EXTRA_FILE": ".env", "RELOADER_XYZZY": "1"}
    assert unknown_variables(environ) == [
        "unknown environment variable RELOADER_EXTRA_FILE is ignored; "
        "did you mean RELOADER_EXTRA_FILES?",
        "unknown environment variable RELOADER_SHOW_ERROR is ignored; "
        "did you mean RELOADER_SHOW_ERRORS?",
        "unknown environment variable RELOADER_XYZZY is ignored",
    ]
    assert unknown_variables({"RELOADER_RUN_DIR": "/x", "RELOADER_ENABLED": "1"}) == []


def test_read_options_warns_once_per_variable(caplog: pytest.LogCaptureFixture) -> None:
    environ = {"RELOADER_POLING": "1"}
    read_options({}, environ=environ)
    read_options({}, environ=environ)
    warnings = [r.getMessage() for r in caplog.records if "RELOADER_POLING" in r.getMessage()]
    assert warnings == [
        "unknown environment variable RELOADER_POLING is ignored; did you mean RELOADER_POLLING?"
    ]
