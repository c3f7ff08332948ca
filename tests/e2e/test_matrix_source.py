"""Source-side faults and bad input from `datasync mock-api`: the run must still end with the
exact set of valid events, every invalid record accounted for, and `verify` agreeing."""

from __future__ import annotations

from pathlib import Path

import pytest

from datasync_cli.mockapi.config import MockConfig

from . import harness as h

pytestmark = pytest.mark.e2e

# Each fault on its own is retried; together they make about one request in six fail once.
FAULTS = {"p5xx": 0.06, "p_truncate": 0.05, "p_drop": 0.05}


@pytest.fixture
def dsn(database_url: str) -> str:
    return h.dsn_url(database_url)


def _one_run_exact(tmp_path: Path, dsn: str, config: MockConfig, scenario: str,
                   extra: list[str]) -> str:
    """One ingest to the end; the exact set, every invalid record rejected, verify passes.
    Returns the ingest's output."""
    with h.mock_for(tmp_path, config) as mock:
        result = h.run(h.ingest_cmd(mock, dsn, *extra), timeout=150)
        h.assert_ingest_ok(result, scenario)
        h.assert_exact_set(dsn, h.expected_ids(config), scenario)
        h.assert_rejected_accounted(dsn, config, scenario)
        h.assert_checkpoints_consistent(dsn, scenario)
        h.assert_verify(mock, dsn, scenario)
    return result.stdout + result.stderr


def test_feed_faults_all_at_once_store_exact_set(tmp_path: Path, dsn: str) -> None:
    """5xx, truncated bodies, dropped connections, jittery latency, the hidden feed throttle
    (429 storm), a token that expires every second and cursors that expire mid-run."""
    config = MockConfig(
        events=20_000, seed=31, latency_ms=200, latency_jitter_ms=100, cursor_ttl=0.5,
        token_ttl=1.0, feed_rate=4.0, feed_burst=1, p_missing_fields=0.2, **FAULTS,
    )
    _one_run_exact(tmp_path, dsn, config, "all source faults at once on the feed",
                   ["--workers", "4", "--page-size", "1000"])


def test_standard_endpoint_faults_all_at_once_store_exact_set(tmp_path: Path, dsn: str) -> None:
    """No stream access: the rate-limited endpoint with a tiny window (429 storm), 5xx,
    truncated bodies, dropped connections, jitter and cursors that expire mid-run."""
    config = MockConfig(
        events=20_000, seed=32, no_stream_access=True, rate_limit=3, rate_window=1.0,
        latency_ms=200, latency_jitter_ms=100, cursor_ttl=0.5, **FAULTS,
    )
    _one_run_exact(tmp_path, dsn, config, "all source faults at once on the standard endpoint",
                   ["--workers", "2", "--page-size", "2000"])


def test_bad_records_and_duplicates_are_rejected_or_stored_once(tmp_path: Path, dsn: str) -> None:
    config = MockConfig(events=30_000, seed=33, bad_records=40, duplicates=60)
    scenario = "--bad-records 40 --duplicates 60"
    with h.mock_for(tmp_path, config) as mock:
        result = h.run(h.ingest_cmd(mock, dsn, "--workers", "4", "--page-size", "2000"))
        h.assert_ingest_ok(result, scenario)
        h.assert_exact_set(dsn, h.expected_ids(config), scenario)
        h.assert_rejected_accounted(dsn, config, scenario)
        h.assert_verify(mock, dsn, scenario)
    # Valid but awkward events (escapes, non-BMP text, huge properties) keep their content.
    truth = h.stream_truth(config)
    awkward = truth.awkward_ids()
    assert awkward, "the stream holds no awkward events: the test checks nothing"
    stored = dict(
        h.query(
            dsn,
            "SELECT id, data->'properties' FROM ingested_events WHERE id = ANY(%s)",
            (awkward,),
        )
    )
    index_of = {truth.stream.timeline.event_id(i): i for i in truth.stream.kinds}
    changed = [
        event_id
        for event_id in awkward
        if stored.get(event_id) != truth.stream.record(index_of[event_id], True)["properties"]
    ]
    assert not changed, f"{scenario}: properties changed on the way in for {changed[:5]}"


def test_early_end_of_source_is_named_by_verify(tmp_path: Path, dsn: str) -> None:
    config = MockConfig(events=20_000, seed=34, early_end=0.6)
    scenario = "source ends early (--early-end 0.6)"
    with h.mock_for(tmp_path, config) as mock:
        result = h.run(h.ingest_cmd(mock, dsn, "--workers", "2", "--page-size", "2000"))
        h.assert_ingest_ok(result, scenario)
        served = h.expected_ids(config, served_only=True)
        h.assert_exact_set(dsn, served, scenario)
        shortfall = len(h.expected_ids(config)) - len(served)
        output = h.assert_verify(mock, dsn, scenario, expect=1)
        assert f"{shortfall:,} missing" in output, (
            f"{scenario}: verify does not name the {shortfall:,} missing records: {output}"
        )
