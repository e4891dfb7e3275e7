"""Test matrix, lint and type checks. `nox -l` lists the sessions.

The Django and gunicorn versions come from pip's resolver within the pins below; each test
session runs the whole suite with real servers. uWSGI and waitress come with the `test` extra:
uWSGI is compiled for each session's interpreter (it needs a C compiler and the headers),
so the uWSGI tests run in every cell of the matrix.
"""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
DJANGOS = {
    "4.2": "django>=4.2,<4.3",
    "5.2": "django>=5.2,<5.3",
    "6.0": "django>=6.0,<6.1",
    "6.1": "django>=6.1,<6.2",
}
GUNICORNS = {"oldest": "gunicorn==24.1.0", "newest": "gunicorn"}
"""24.1 is the oldest gunicorn we support. 22 and 23: the gthread worker drops connections it
accepted but had not read when told to stop, on every graceful restart (their own --reload's
too). 24.0: the arbiter never reaps its workers on Linux (SIGCHLD queued under its alias
SIGCLD, which it has no handler for)."""


def _supported(python: str, django: str) -> bool:
    # Django 6 needs Python 3.12 or newer.
    return not django.startswith("6.") or python in ("3.12", "3.13")


@nox.session(python=PYTHONS)
@nox.parametrize("gunicorn", list(GUNICORNS))
@nox.parametrize("django", list(DJANGOS))
def tests(session: nox.Session, django: str, gunicorn: str) -> None:
    """The whole suite over one Python, one Django and one gunicorn."""
    if not _supported(str(session.python), django):
        session.skip(f"Django {django} does not run on Python {session.python}")
    session.install("-e", ".[test]", DJANGOS[django], GUNICORNS[gunicorn])
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python="3.11")
def typecheck(session: nox.Session) -> None:
    session.install("-e", ".[dev]")
    session.run("mypy")


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """Benchmarks against the peers (needs Debian's apache2-dev and wrk); `nox -s bench --
    --quick` for a short run, `-- --update-readme` to write the table into README.md."""
    session.install("-e", ".[dev]")
    session.install("--no-cache-dir", "mod_wsgi")
    session.run("python", "-m", "benchmarks", *session.posargs)
