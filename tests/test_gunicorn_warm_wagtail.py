"""Warm mode on the site `wagtail start` makes (issue #11): the arbiter imports the workers'
third-party modules before Django's settings, many of which need them (django-ninja's
`conf`, Wagtail's models); a view edit and a models edit are still served fresh, by every
worker, and no request fails. The site is a copy of the session's (`wagtail_template`, made
while the tests before it ran: `migrate` runs Wagtail's 185 migrations in about 20 s)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import StartGunicorn
from support import (
    PreforkServer,
    SteadyLoad,
    assert_fresh_everywhere,
    edit,
    every_worker_serves,
    wait_until,
)

from benchmarks.wagtail_site import APP, SETTINGS, Generation

pytestmark = pytest.mark.gunicorn

SET_UP = "Django set up in the tier process"
TIER_FAILED = re.compile(r"django\.setup\(\) (failed )?in the Django tier")  # both warnings
PRELOADED = "import cleanly before Django's settings"  # the arbiter has the probe's findings
REPLACED = "replacing the Django tier ("
VIEW = "/bench/version/"  # home/views.py: "v1 pid=N"
PAGE = "/about/"  # a page of home/models.py's HomePage: "m1 pid=N" in it


@pytest.fixture
def wagtail_site(wagtail_template: Path, tmp_path: Path) -> Path:
    return Generation(tmp_path, "site", wagtail_template).ready()


def _tier_set_up(server: PreforkServer, since: int) -> None:
    """Wait for the next tier's setup after `since` lines of log: it must not fail."""

    def outcome() -> bool:
        later = server.log().splitlines()[since:]
        return any(SET_UP in line or TIER_FAILED.search(line) for line in later)

    wait_until(outcome, message=lambda: f"a Django tier's setup:\n{server.log_tail()}")
    later = "\n".join(server.log().splitlines()[since:])
    assert not TIER_FAILED.search(later), later


def test_view_and_models_edits_on_a_wagtail_site(
    gunicorn: StartGunicorn, wagtail_site: Path
) -> None:
    """The first tier, a view edit, then a models edit once the arbiter imported what its
    probe found (the new tier is forked from that), then a view edit served by the new
    tier's workers: each answer fresh on every worker, none an error."""
    server = gunicorn(
        "-c", "python:reloader.gunicorn", "-w", "2", "-k", "gthread", "--threads", "4",
        cwd=wagtail_site,
        env={"RELOADER_APP": APP, "DJANGO_SETTINGS_MODULE": SETTINGS},
        ready=VIEW,
        workers=2,
        helpers=("reloader.warm",),
    )  # fmt: skip
    views, models = wagtail_site / "home" / "views.py", wagtail_site / "home" / "models.py"
    with SteadyLoad(server.url(VIEW), clients=1) as load:
        _tier_set_up(server, 0)
        edit(views, '"v1"', '"v2"')
        assert_fresh_everywhere(server, VIEW, "v2 pid=", None)
        every_worker_serves(server, VIEW, "v2 pid=")

        server.wait_for_log(PRELOADED)
        lines = len(server.log().splitlines())
        edit(models, '"m1"', '"m2"')
        _tier_set_up(server, lines)
        assert_fresh_everywhere(server, PAGE, "m2 pid=", None)

        edit(views, '"v2"', '"v3"')
        assert_fresh_everywhere(server, VIEW, "v3 pid=", None)
        every_worker_serves(server, VIEW, "v3 pid=")
    failed = [a for a in load.answers if a.status != 200]
    assert load.answers and not failed, failed[:3]
    log = server.log()
    assert log.count(REPLACED) == 1 and "could not load" not in log, log
