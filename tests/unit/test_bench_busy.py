"""`benchmarks.busy`'s table: the ratio to gunicorn --reload, and the slow requests that got an
answer."""

from __future__ import annotations

from benchmarks.busy import row


def test_a_row_counts_the_slow_requests_answered_and_compares_with_gunicorn() -> None:
    own = {"median_s": 4.0, "p90_s": 4.5, "slow": {"requests": 10, "lost": 0}}
    entry = {"median_s": 0.4, "p90_s": 0.5, "slow": {"requests": 10, "lost": 3}}
    assert row("reloader-gunicorn", entry, own) == (
        "| reloader-gunicorn | 0.4 s | 0.5 s | x0.10 | 7 / 10 |"
    )
    assert row("gunicorn-reload", own, None).endswith("| - | 10 / 10 |")
    assert row("runserver", {"status": "failed"}, own).startswith("| runserver | failed:")
