"""Source-side faults and bad input from `datasync mock-api`: the run must still end with the
exact set of valid events, every invalid record accounted for, and `verify` agreeing."""

from __future__ import annotations

import contextlib
import dataclasses
import re
import threading
import time
from pathlib import Path

import pytest
import requests

from datasync_cli.mockapi.config import MockConfig

from . import harness as h

pytestmark = pytest.mark.e2e

# Together about one request in four fails once (and is retried); eight failures in a row,
# where the tool gives up, stay improbable.
P5XX, P_TRUNCATE, P_DROP = 0.1, 0.08, 0.08
RIVALS = 3
STORM_S = 6.0
_STATUS = re.compile(r'HTTP/[0-9.]+" (\d{3}) ')


@pytest.fixture
def dsn(database_url: str) -> str:
    return h.dsn_url(database_url)


def _assert_exact_run(
    mock: h.MockProcess, dsn: str, config: MockConfig, scenario: str, extra: list[str]
) -> int:
    """One ingest to the end; the exact set, every invalid record rejected, verify passes.
    Returns how many failed requests the ingest retried."""
    result = h.run(h.ingest_cmd(mock, dsn, *extra), timeout=150)
    h.assert_ingest_ok(result, scenario)
    h.assert_exact_set(dsn, h.expected_ids(config), scenario)
    h.assert_rejected_accounted(dsn, config, scenario)
    h.assert_checkpoints_consistent(dsn, scenario)
    h.assert_verify(mock, dsn, scenario)
    return max(int(r.get("retries") or 0) for r in h.json_lines(result.stdout))


def _statuses(mock: h.MockProcess, path_end: str, page_size: int) -> set[int]:
    """Statuses the mock answered to the ingest's requests (those asking for `page_size`)."""
    found = set()
    for line in h.log_text(mock.log).splitlines():
        match = _STATUS.search(line)
        if match and f"{path_end}?" in line and f"limit={page_size}" in line:
            found.add(int(match[1]))
    return found


def test_feed_faults_with_expiring_tokens_and_cursors_store_exact_set(
    tmp_path: Path, dsn: str
) -> None:
    """5xx, truncated bodies, dropped connections, jittery latency, events lacking optional
    fields, a token that expires every second (also mid-page) and cursors that expire
    between pages."""
    config = MockConfig(
        events=20_000, seed=31, latency_ms=250, latency_jitter_ms=200, cursor_ttl=0.5,
        token_ttl=1.0, p_missing_fields=0.2, p5xx=P5XX, p_truncate=P_TRUNCATE, p_drop=P_DROP,
        # When the tool gives up on the feed for a while it reads the standard endpoint:
        # a generous limit there keeps that detour short.
        rate_limit=100, rate_window=1.0,
    )
    scenario = "source faults, token and cursor expiry on the feed"
    with h.mock_logged(tmp_path, config) as mock:
        retried = _assert_exact_run(
            mock, dsn, config, scenario, ["--workers", "4", "--page-size", "1000"]
        )
        seen = _statuses(mock, "/feed", 1000)
    # The faults did happen: expired cursors (400), expired tokens (403), failed requests.
    assert {400, 403} <= seen and retried > 0, (
        f"{scenario}: not every fault reached the ingest: feed statuses {sorted(seen)}, "
        f"{retried} retries"
    )


def test_feed_throttle_storm_with_faults_stores_exact_set(tmp_path: Path, dsn: str) -> None:
    """The hidden feed throttle at 2 requests/s with a burst of 1 against 4 readers (a storm
    of 429s), together with 5xx, truncated bodies, dropped connections and jitter."""
    config = MockConfig(
        events=12_000, seed=35, latency_ms=200, latency_jitter_ms=100,
        feed_rate=2.0, feed_burst=1, p5xx=P5XX, p_truncate=P_TRUNCATE, p_drop=P_DROP,
        rate_limit=100, rate_window=1.0,
    )
    scenario = "feed throttle 429 storm with faults"
    with h.mock_logged(tmp_path, config) as mock:
        retried = _assert_exact_run(
            mock, dsn, config, scenario, ["--workers", "4", "--page-size", "2000"]
        )
        seen = _statuses(mock, "/feed", 2000)
    assert 429 in seen and retried > 0, (
        f"{scenario}: not every fault reached the ingest: feed statuses {sorted(seen)}, "
        f"{retried} retries"
    )


def test_standard_endpoint_faults_and_429_storm_store_exact_set(
    tmp_path: Path, dsn: str
) -> None:
    """No stream access: the rate-limited endpoint with a tiny window (3 per second) whose
    budget other clients of the same key spend at first (a storm of 429s), plus 5xx,
    truncated bodies, dropped connections, jitter and cursors that expire mid-run."""
    config = MockConfig(
        events=9_000, seed=32, no_stream_access=True, rate_limit=3, rate_window=1.0,
        latency_ms=200, latency_jitter_ms=100, cursor_ttl=0.5,
        p5xx=P5XX, p_truncate=P_TRUNCATE, p_drop=P_DROP,
    )
    scenario = "standard endpoint 429 storm with faults"
    with h.mock_logged(tmp_path, config) as mock:
        stop = threading.Event()
        rivals = [
            threading.Thread(target=_spend_budget, args=(mock, stop), daemon=True)
            for _ in range(RIVALS)
        ]
        for rival in rivals:
            rival.start()
        try:
            retried = _assert_exact_run(
                mock, dsn, config, scenario, ["--workers", "2", "--page-size", "1500"]
            )
        finally:
            stop.set()
            for rival in rivals:
                rival.join(10)
        seen = _statuses(mock, "/events", 1500)
    assert {429, 400} <= seen and retried > 0, (
        f"{scenario}: not every fault reached the ingest: /events statuses {sorted(seen)}, "
        f"{retried} retries"
    )


def _spend_budget(mock: h.MockProcess, stop: threading.Event) -> None:
    """Another client of the same key, asking for one event again and again for the first
    seconds of the run: together the rivals want more than the window allows."""
    ends = time.monotonic() + STORM_S
    with requests.Session() as session:
        session.headers["X-API-Key"] = mock.api_key
        while time.monotonic() < ends and not stop.wait(0.05):
            with contextlib.suppress(requests.RequestException):
                session.get(f"{mock.url}/events", params={"limit": 1}, timeout=5)


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


def test_invalid_records_reread_through_other_endpoint_are_counted_once(
    tmp_path: Path, dsn: str
) -> None:
    """The two endpoints spell the same record's timestamp differently (epoch ms on the feed,
    often ISO text on the standard endpoint). Reading the same invalid records again through
    the other endpoint (here: `reset-cursor`, then a run without stream access) must not store
    them a second time: each invalid record of the source is in rejected_events once, and
    verify exits 0."""
    scenario = "invalid records read again through the other endpoint"
    config = MockConfig(events=20_000, seed=36, bad_records=20)
    extra = ["--workers", "2", "--page-size", "5000"]
    with h.mock_for(tmp_path, config) as mock:
        h.assert_ingest_ok(h.run(h.ingest_cmd(mock, dsn, *extra)), f"{scenario}, feed run")
        h.assert_rejected_accounted(dsn, config, f"{scenario}, after the feed run")
    reset = h.run(h.datasync("reset-cursor", "--yes", "--database-url", dsn))
    assert reset.returncode == 0, reset.stderr
    standard = dataclasses.replace(config, no_stream_access=True, rate_limit=1000,
                                   rate_window=1.0)
    with h.mock_for(tmp_path, standard) as mock:
        result = h.run(h.ingest_cmd(mock, dsn, *extra))
        h.assert_ingest_ok(result, f"{scenario}, standard endpoint run")
        h.assert_exact_set(dsn, h.expected_ids(config), scenario)
        h.assert_rejected_accounted(dsn, config, scenario)
        h.assert_verify(mock, dsn, scenario)


def test_rerun_after_early_end_recovers_the_shortfall(tmp_path: Path, dsn: str) -> None:
    """After a run the source ended early, `verify` says "rerun ingest, then verify again" (so
    does the README). A rerun that finds the stored records short of the source's total reads
    the whole stream again, so once the source serves everything, the set is exact and verify
    exits 0."""
    scenario = "rerun after the source ended early"
    short = MockConfig(events=20_000, seed=37, early_end=0.6)
    extra = ["--workers", "2", "--page-size", "2000"]
    with h.mock_for(tmp_path, short) as mock:
        h.assert_ingest_ok(h.run(h.ingest_cmd(mock, dsn, *extra)), f"{scenario}, short run")
        h.assert_verify(mock, dsn, f"{scenario}, short run", expect=1)
    full = dataclasses.replace(short, early_end=1.0)
    with h.mock_for(tmp_path, full) as mock:
        h.assert_ingest_ok(h.run(h.ingest_cmd(mock, dsn, *extra)), f"{scenario}, rerun")
        h.assert_exact_set(dsn, h.expected_ids(full), scenario)
        h.assert_verify(mock, dsn, scenario)
