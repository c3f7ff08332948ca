"""RunMetrics with a fake clock: the rate is over wall time, the bar starts at what is stored
and never passes the total, the ETA follows what limits the run, switches are seen once."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from datasync_cli.clock import FakeClock
from datasync_cli.models import Batch, Checkpoint
from datasync_cli.pipeline.metrics import RunMetrics
from datasync_cli.sink import WriteResult
from datasync_cli.source import SourceHealth

HEALTH = SourceHealth(
    retries=0, rate_limited=0, rate_wait_s=0.0, feed_throttled=0, feed_rate=None,
    token_origin="issued", token_seconds_left=240.0, token_problem=None,
    token_left_is_bound=False, feed_usable=True, standard_requests_per_s=None,
)
STANDARD = replace(HEALTH, feed_usable=False, token_origin=None, token_seconds_left=None,
                   standard_requests_per_s=10 / 60)


def batch(n: int, endpoint: str = "feed") -> Batch:
    return Batch([], [], Checkpoint("r0", endpoint=endpoint), b"", fetched=n)  # type: ignore[arg-type]


def written(metrics: RunMetrics, n: int, endpoint: str = "feed") -> None:
    metrics.batch_written(batch(n, endpoint), WriteResult(n, 0, 0, 0))


def test_the_rate_falls_while_nothing_arrives() -> None:
    clock = FakeClock()
    metrics = RunMetrics(clock)
    for _ in range(10):
        clock.advance(1)
        written(metrics, 5000)
        metrics.snapshot(HEALTH, 1)
    assert metrics.rate() == pytest.approx(5000, rel=0.01)
    rates = []
    for _ in range(60):  # a minute of rate-limit wait: nothing arrives
        clock.advance(1)
        rates.append(metrics.snapshot(HEALTH, 1).events_per_s)
    assert rates[10] < 5000 * 0.75 and rates[-1] == 0.0
    assert all(later <= earlier for earlier, later in itertools.pairwise(rates))


def test_a_resumed_run_starts_the_bar_at_what_is_stored() -> None:
    metrics = RunMetrics(FakeClock(), stored_before=94_000)
    metrics.page_fetched("feed", 200_000, 0, True)
    snap = metrics.snapshot(HEALTH, 3)
    assert (snap.stored, snap.total) == (94_000, 200_000)
    written(metrics, 5000)
    assert metrics.snapshot(HEALTH, 3).stored == 99_000


def test_duplicates_and_reads_outside_a_range_are_no_progress() -> None:
    clock = FakeClock()
    metrics = RunMetrics(clock, stored_before=100_000)
    metrics.page_fetched("feed", 100_000, 5000, True)
    clock.advance(1)
    metrics.batch_written(batch(5000), WriteResult(0, 5000, 0, 0))
    snap = metrics.snapshot(HEALTH, 0)
    assert (snap.stored, snap.duplicates, snap.outside) == (100_000, 5000, 5000)
    from datasync_cli.display.figures import progress_of

    assert progress_of(snap) == "100,000/100,000 (100%)"
    metrics.batch_written(batch(1), WriteResult(1, 0, 0, 0))
    assert "beyond the source's total" in progress_of(metrics.snapshot(HEALTH, 0))
    assert "(100%)" in progress_of(metrics.snapshot(HEALTH, 0))


def test_on_the_standard_endpoint_the_eta_comes_from_its_request_budget() -> None:
    clock = FakeClock()
    metrics = RunMetrics(clock, page_size=5000)
    metrics.page_fetched("feed", 500_000, 0, True)
    metrics.page_fetched("standard", 500_000, 0, False)
    clock.advance(1)
    written(metrics, 50_000, "standard")  # a burst: 10 pages in a second
    snap = metrics.snapshot(STANDARD, 1)
    # 450,000 events left = 90 pages at 10 a minute: 9 minutes, whatever the burst suggests.
    assert snap.eta_s == pytest.approx(540)


def test_a_switch_is_reported_once_and_an_early_page_is_none() -> None:
    clock = FakeClock()
    metrics = RunMetrics(clock)
    metrics.page_fetched("standard", None, 0, False, early=True)
    metrics.page_fetched("feed", None, 0, True)
    assert metrics.switches() == []
    clock.advance(30)
    metrics.page_fetched("standard", None, 0, False)
    metrics.page_fetched("feed", None, 0, False)  # in flight when the token went: no switch
    (switch,) = metrics.switches()
    assert (switch.source, switch.target, switch.at_s) == ("feed", "standard", 30)
    assert metrics.switches() == []
    written(metrics, 10, "standard")
    clock.advance(12)
    summary = metrics.summary(STANDARD, True, 0)
    assert summary["seconds_by_endpoint"] == {"standard": 12}
