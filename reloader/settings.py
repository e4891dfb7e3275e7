"""Every option of the wrapper, declared once with its environment variable and its docs.

Each `Setting` knows how to read its value from a keyword of `wrap()` or, when the keyword is
left out, from its environment variable. A value that cannot be read raises `ConfigError`,
which names the variable (or keyword) and the values it accepts, so a typo stops the server at
startup instead of silently doing something else.
"""

from __future__ import annotations

import difflib
import enum
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .log import logger, make_visible

__all__ = [
    "CARRY_VARIABLE",
    "GRACE",
    "ORPHANS_VARIABLE",
    "RUN_DIR_VARIABLE",
    "SETTINGS",
    "SETUP_FAILED_VARIABLE",
    "SPOILT_VARIABLE",
    "WARM_DJANGO",
    "ConfigError",
    "Options",
    "Setting",
    "ShowErrors",
    "read_options",
]

T = TypeVar("T")

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class ConfigError(ValueError):
    """An option or environment variable has a value the wrapper cannot use."""


class ShowErrors(enum.Enum):
    """Who may see the details (traceback, source) of a failed load."""

    AUTO = "auto"
    """Only a loopback client that sent no proxy headers, to a loopback or trusted Host."""
    ALWAYS = "always"
    """Everyone: only for a server nobody else can reach."""
    NEVER = "never"
    """Nobody: pages show an error id, the log has the traceback."""


def _parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError


def _parse_show_errors(text: str) -> ShowErrors:
    value = text.strip().lower()
    if value == "auto":
        return ShowErrors.AUTO
    return ShowErrors.ALWAYS if _parse_bool(value) else ShowErrors.NEVER


def _parse_paths(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(os.pathsep) if part.strip())


def _parse_seconds(text: str) -> float:
    value = float(text.strip())
    if not 0 < value < float("inf"):
        raise ValueError
    return value


# A host name as Django's ALLOWED_HOSTS holds one ('.example.com' for it and its subdomains),
# or a bracketed IPv6 literal; no port, no '*' (it would trust a DNS rebinding attacker's name).
_HOST_ENTRY = re.compile(r"\.?[a-z0-9-]+(\.[a-z0-9-]+)*\.?|\[[a-f0-9]*:[a-f0-9.:]+\]")


def _parse_host(text: str) -> str:
    value = text.strip().lower()
    if not _HOST_ENTRY.fullmatch(value):
        raise ValueError
    return value.removesuffix(".")  # compared with Host headers that lost theirs


def _parse_hosts(text: str) -> tuple[str, ...]:
    return tuple(_parse_host(part) for part in text.split(",") if part.strip())


def _parse_target(text: str) -> str:
    value = text.strip()
    module, _, attribute = value.partition(":")
    if not module or ":" in attribute or not all(p.isidentifier() for p in module.split(".")):
        raise ValueError
    if attribute and not all(p.isidentifier() for p in attribute.split(".")):
        raise ValueError
    return value


@dataclass(frozen=True)
class Setting(Generic[T]):
    """One option: its `wrap()` keyword, its environment variable, how to read it, its docs."""

    name: str
    """The keyword argument of `wrap()`."""
    env: str
    """The environment variable read when the keyword is not given."""
    parse: Callable[[str], T]
    """Turns the variable's text into a value; raises `ValueError` on bad input."""
    default: T
    """The value when neither the keyword nor the variable is set."""
    accepts: str
    """The accepted values, as shown in error messages and the README."""
    doc: str
    """What the option does."""
    item: Callable[[str], str] | None = None
    """For a list option: checks one element given in a `wrap()` keyword's sequence."""

    def read(self, given: Any, environ: Mapping[str, str]) -> T:
        """The keyword's value when given (strings are parsed), else the variable's, else the
        default. A variable set but empty is parsed like any value: an empty list for a list
        option, an error for the others (`RELOADER_ENABLED=` is no clear yes or no)."""
        if given is None:
            text = environ.get(self.env)
            if text is None:
                return self.default
            return self._parse(text, f"environment variable {self.env}={text!r}")
        if isinstance(given, str):
            return self._parse(given, f"option {self.name}={given!r}")
        return self._coerce(given)

    def _parse(self, text: str, where: str) -> T:
        try:
            return self.parse(text)
        except ValueError:
            hint = " (unset it for the default)" if not text.strip() else ""
            raise ConfigError(
                f"reloader: invalid {where}{hint}; accepted: {self.accepts}"
            ) from None

    def _coerce(self, given: Any) -> T:
        if isinstance(self.default, tuple):
            paths = isinstance(given, Sequence) and not isinstance(given, str)
            if paths and all(isinstance(p, (str, os.PathLike)) for p in given):
                items = tuple(os.fspath(p) for p in given)
                try:
                    return tuple(map(self.item, items)) if self.item else items  # type: ignore[return-value]
                except ValueError:
                    pass  # named with the accepted values below
        elif isinstance(self.default, bool):
            if isinstance(given, bool):
                return given  # type: ignore[return-value]
        elif isinstance(self.default, float):
            if isinstance(given, (int, float)) and not isinstance(given, bool) and given > 0:
                return float(given)  # type: ignore[return-value]
        elif isinstance(self.default, ShowErrors):
            if isinstance(given, bool):
                return ShowErrors.ALWAYS if given else ShowErrors.NEVER  # type: ignore[return-value]
            if isinstance(given, ShowErrors):
                return given  # type: ignore[return-value]
        raise ConfigError(
            f"reloader: invalid option {self.name}={given!r}; accepted: {self.accepts}"
        )


APP: Setting[str | None] = Setting(
    name="target",
    env="RELOADER_APP",
    parse=_parse_target,
    default=None,
    accepts="an import string 'package.module:attribute' (attribute defaults to 'application')",
    doc="The WSGI application to serve. Without it, and with DJANGO_SETTINGS_MODULE set, "
    "Django's get_wsgi_application() is served.",
)
ENABLED: Setting[bool] = Setting(
    name="enabled",
    env="RELOADER_ENABLED",
    parse=_parse_bool,
    default=True,
    accepts="1/true/yes/on or 0/false/no/off",
    doc="Off: wrap() returns the application itself; no thread, no watching, no per-request "
    "work. For production with the same WSGI file.",
)
EXTRA_FILES: Setting[tuple[str, ...]] = Setting(
    name="extra_files",
    env="RELOADER_EXTRA_FILES",
    parse=_parse_paths,
    default=(),
    accepts=f"files or globs separated by {os.pathsep!r}, relative to the working directory",
    doc="More files to watch besides the imported modules, e.g. '.env', 'config/*.toml' or "
    "'config/*/local.toml'; '**' matches any number of directories ('assets/**': everything "
    "below assets).",
)
IGNORE: Setting[tuple[str, ...]] = Setting(
    name="ignore",
    env="RELOADER_IGNORE",
    parse=_parse_paths,
    default=(),
    accepts=f"globs separated by {os.pathsep!r}, matched against the file name, its path "
    "relative to the working directory, and its absolute path",
    doc="Changes to matching files never restart anything.",
)
POLLING: Setting[bool] = Setting(
    name="polling",
    env="RELOADER_POLLING",
    parse=_parse_bool,
    default=False,
    accepts="1/true/yes/on or 0/false/no/off",
    doc="Poll file times of every watched directory instead of using the kernel's events. "
    "Chosen by itself, with a warning, where native watching fails; a directory on NFS, Docker "
    "Desktop, WSL or another file system without local events is polled by itself anyway.",
)
SHOW_ERRORS: Setting[ShowErrors] = Setting(
    name="show_errors",
    env="RELOADER_SHOW_ERRORS",
    parse=_parse_show_errors,
    default=ShowErrors.AUTO,
    accepts="auto, 1/true/yes/on (always) or 0/false/no/off (never)",
    doc="Who sees the traceback of a failed load in the 500 page. auto: only a loopback client "
    "that sent no proxy headers, over HTTP/1.1 or later, whose Host is a loopback name or "
    "address, one of trusted_hosts or of Django's ALLOWED_HOSTS. Everyone else gets an error "
    "id that is also in the log.",
)
TRUSTED_HOSTS: Setting[tuple[str, ...]] = Setting(
    name="trusted_hosts",
    env="RELOADER_TRUSTED_HOSTS",
    parse=_parse_hosts,
    default=(),
    accepts="host names or bracketed IPv6 addresses separated by ',', without port; "
    "'.example.com' for it and its subdomains; not '*'",
    doc="Besides localhost, *.localhost, 127.0.0.0/8 and [::1], the Host names under which a "
    "loopback client may see details (show_errors=auto), e.g. a name in /etc/hosts for this "
    "machine. Django's ALLOWED_HOSTS count too once the settings loaded, but their '*' does not.",
    item=_parse_host,
)

GRACE: Setting[float] = Setting(
    name="grace",
    env="RELOADER_GRACE",
    parse=_parse_seconds,
    default=5.0,
    accepts="a number of seconds greater than 0",
    doc="How long a worker that stops (for a reload, or the server's graceful stop) may take "
    "to finish the requests it is answering; then it logs the ones it cuts and exits. "
    "Streaming responses of unknown length (server-sent events, django-browser-reload) end at "
    "their next chunk as soon as the stop begins. Never longer than the server's own graceful "
    "timeout.",
)

SETTINGS: tuple[Setting[Any], ...] = (
    APP,
    ENABLED,
    EXTRA_FILES,
    IGNORE,
    POLLING,
    SHOW_ERRORS,
    GRACE,
    TRUSTED_HOSTS,
)


WARM_DJANGO: Setting[bool] = Setting(
    name="warm_django",
    env="RELOADER_WARM_DJANGO",
    parse=_parse_bool,
    default=True,
    accepts="1/true/yes/on or 0/false/no/off",
    doc="Warm mode only: run django.setup() in the arbiter, so workers are forked with the "
    "settings read and the models imported. An edit of a file setup imported (settings, models, "
    "admin modules) then re-execs the arbiter. Off: such edits restart only the workers, and "
    "each worker runs setup itself.",
)
"""Read by the warm arbiter alone, so not a keyword of `wrap()`."""

RUN_DIR_VARIABLE = "RELOADER_RUN_DIR"
"""Not an option: warm mode tells its workers where their run directory is."""
CARRY_VARIABLE = "RELOADER_WARM_CARRY"
"""Not an option: a warm arbiter's re-exec tells the new image what the old one held."""
SETUP_FAILED_VARIABLE = "RELOADER_WARM_SETUP_FAILED"
"""Not an option: a warm arbiter's re-exec after its `django.setup()` raised says when."""
ORPHANS_VARIABLE = "RELOADER_WARM_ORPHANS"
"""Not an option: a warm arbiter's re-exec names the children the new image must reap."""
SPOILT_VARIABLE = "RELOADER_WARM_SPOILT"
"""Not an option: set by a warm arbiter's re-exec after an import it preloaded went otherwise
there than in its probe: this server's arbiters preload nothing more."""

KNOWN_VARIABLES = frozenset(
    {s.env for s in SETTINGS}
    | {
        WARM_DJANGO.env,
        RUN_DIR_VARIABLE,
        CARRY_VARIABLE,
        SETUP_FAILED_VARIABLE,
        ORPHANS_VARIABLE,
        SPOILT_VARIABLE,
    }
)
_warned_variables: set[str] = set()


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """A warning for each `RELOADER_*` variable the wrapper does not read, naming the closest
    known one: a misspelled option would otherwise be silently ignored."""
    prefix = "RELOADER_"
    # Compared without the prefix they all share, which would make any name look close.
    suffixes = sorted(known[len(prefix) :] for known in KNOWN_VARIABLES)
    warnings = []
    for name in sorted(environ):
        if name.startswith(prefix) and name not in KNOWN_VARIABLES:
            close = difflib.get_close_matches(name[len(prefix) :], suffixes, n=1)
            hint = f"; did you mean {prefix}{close[0]}?" if close else ""
            warnings.append(f"unknown environment variable {name} is ignored{hint}")
    return warnings


@dataclass(frozen=True)
class Options:
    """The options of one `wrap()` call, read and checked."""

    target: str | None
    enabled: bool
    extra_files: tuple[str, ...]
    ignore: tuple[str, ...]
    polling: bool
    show_errors: ShowErrors
    grace: float
    trusted_hosts: tuple[str, ...]


def read_options(given: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Options:
    """Read every setting from `given` keywords, falling back to `environ` (default
    `os.environ`). Raises `ConfigError` for an unknown keyword or a bad value."""
    environ = os.environ if environ is None else environ
    # Once per process and variable: every wrap() and the warm arbiter read the options.
    for warning in unknown_variables(environ):
        if warning not in _warned_variables:
            _warned_variables.add(warning)
            make_visible()
            logger.warning(warning)
    known = {s.name for s in SETTINGS}
    unknown = sorted(set(given) - known)
    if unknown:
        raise ConfigError(
            f"reloader: unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    values = {s.name: s.read(given.get(s.name), environ) for s in SETTINGS}
    return Options(**values)
