"""`datasync ingest` and `datasync verify` as processes against `datasync mock-api` on a socket.

Each test checks the database against the simulator's ground truth: exactly the source's valid
ids, each once (the failure message names what is missing or duplicated), and `verify` agrees.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pytest

from datasync_cli.clock import SystemClock
from datasync_cli.mockapi import MockConfig, StreamTruth, running_mock
from datasync_cli.mockapi.truth import id_checksum as truth_checksum
from datasync_cli.sink import id_checksum

from . import harness as h
from .conftest import StartMock

pytestmark = pytest.mark.e2e

INGEST_TIMEOUT_S = 120


def _ingest(mock: h.MockProcess, dsn: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return h.run(h.ingest_cmd(mock, dsn, *extra), timeout=INGEST_TIMEOUT_S)


def _completed(result: subprocess.CompletedProcess[str], scenario: str) -> dict[str, Any]:
    """The summary of a run that must have exhausted the source."""
    h.assert_ingest_ok(result, scenario)
    summary = h.run_summary(result.stdout)
    assert summary["status"] == "complete", f"{scenario}: {summary}"
    return summary


def _assert_exact(dsn: str, expected: frozenset[str], scenario: str) -> None:
    h.assert_exact_set(dsn, expected, scenario)
    stored = id_checksum(dsn)
    assert (stored.count, stored.checksum) == (len(expected), truth_checksum(expected)), scenario


def _data_requests(requests: list[h.LoggedRequest]) -> list[h.LoggedRequest]:
    return [r for r in requests if r.method == "GET" and r.path in (h.FEED_PATH, h.STANDARD_PATH)]


def test_full_run_lands_the_exact_set_and_a_second_run_is_a_no_op(
    serve: StartMock, db_url: str
) -> None:
    config = MockConfig(events=30_000)
    expected = h.expected_ids(config)
    mock = serve(config)

    first = _completed(_ingest(mock, db_url), "first run")
    _assert_exact(db_url, expected, "first run")
    assert first["inserted"] == len(expected)
    assert first["source_total"] == config.events

    again = _ingest(mock, db_url)
    second = _completed(again, "second run")
    assert h.json_lines(again.stdout)[-1]["message"] == "ingestion complete"
    assert second["inserted"] == 0 and second["rejected"] == 0, second
    assert second["fetched"] < len(expected) // 10, f"the second run read it all again: {second}"
    _assert_exact(db_url, expected, "second run")
    h.assert_verify(mock, db_url, "after two runs")


def test_expiring_tokens_are_renewed_and_the_feed_serves_the_whole_run(
    serve: StartMock, db_url: str
) -> None:
    # 40 pages, at most 2 in flight, each held 250 ms before the token is checked: the token
    # checks span at least 4.75 s, more than two 2 s lifetimes, so at least 3 tokens are needed.
    config = MockConfig(events=20_000, token_ttl=2.0, latency_ms=250.0)
    mock = serve(config)

    summary = _completed(
        _ingest(mock, db_url, "--page-size", "500", "--workers", "2"), "short-lived tokens"
    )
    requests = h.mock_requests(mock)
    _assert_exact(db_url, h.expected_ids(config), "short-lived tokens")

    # The run's first page may come from the standard endpoint while the first token is on
    # its way; every other page comes from the feed, across token renewals.
    by_endpoint = summary["pages_by_endpoint"]
    assert by_endpoint.get("standard", 0) <= 1 and by_endpoint["feed"] >= 39, summary
    standard = [r for r in requests if r.path == h.STANDARD_PATH]
    assert len(standard) <= 1, f"the standard endpoint was used: {standard[:3]}"
    issued = [r for r in requests if r.path == h.STREAM_ACCESS_PATH and r.status == 200]
    assert len(issued) >= 3, f"only {len(issued)} token(s) issued over the run"
    h.assert_verify(mock, db_url, "short-lived tokens")


class _ShiftedClock(SystemClock):
    """The real clock, with monotonic time jumping ahead on demand: expires tokens at once."""

    def __init__(self) -> None:
        self.offset = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.offset


@contextmanager
def _expire_tokens_after(
    server_requests: Mapping[str, int], clock: _ShiftedClock, feed_requests: int, jump_s: float
) -> Iterator[None]:
    """Move `clock` ahead by `jump_s` once the simulator counted `feed_requests` feed requests."""
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if server_requests.get("feed", 0) >= feed_requests:
                clock.offset += jump_s
                return
            done.wait(0.01)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(5)


def test_supplied_token_expiring_without_renewal_falls_back_to_the_standard_endpoint(
    db_url: str,
) -> None:
    """An operator's token, a key that may not ask for another: the feed until the token dies,
    then the rate-limited standard endpoint from the same position.

    The simulator runs in this process (ingest is still a process on a socket): its token
    endpoint must hand out one token and then refuse, and the token must die mid-run whatever
    the machine's speed, so the test expires it by moving the simulator's monotonic clock once
    the second feed request arrived. With one reader, the first was answered by then."""
    config = MockConfig(
        events=20_000, api_key=h.API_KEY, token_ttl=3600.0, rate_limit=5, rate_window=1.0,
        latency_ms=20.0,
    )
    clock = _ShiftedClock()
    with running_mock(config, clock) as server:
        token = h.dashboard_token(server.url, h.API_KEY)
        server.app.config = dataclasses.replace(server.app.config, no_stream_access=True)
        with _expire_tokens_after(server.counters.requests, clock, 2, 2 * 3600.0):
            result = h.run(
                h.ingest_args(
                    server.url, h.API_KEY, db_url, "--token", token, "--workers", "1",
                    "--page-size", "1000",
                ),
                timeout=INGEST_TIMEOUT_S,
            )
        summary = _completed(result, "token expired, no renewal")
        verify = h.run(
            [*h.DATASYNC, "verify", "--api-url", server.url, "--api-key", h.API_KEY,
             "--database-url", db_url],
            timeout=60,
        )
    _assert_exact(db_url, h.expected_ids(config), "token expired, no renewal")
    by_endpoint = summary["pages_by_endpoint"]
    assert by_endpoint.get("feed", 0) >= 1 and by_endpoint.get("standard", 0) >= 1, summary
    assert sum(by_endpoint.values()) == summary["pages"], summary
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_server_faults_lose_and_duplicate_nothing(serve: StartMock, db_url: str) -> None:
    config = MockConfig(
        events=20_000, p5xx=0.05, p_truncate=0.05, p_drop=0.03, latency_ms=5.0,
        latency_jitter_ms=40.0,
    )
    mock = serve(config)

    # 200 pages: the chance that not one answer is a 5xx is below 1e-4.
    _completed(_ingest(mock, db_url, "--page-size", "100"), "faults")
    answered = _data_requests(h.mock_requests(mock))
    _assert_exact(db_url, h.expected_ids(config), "faults")
    failed = [r for r in answered if r.status >= 500]
    assert failed, f"no 5xx among {len(answered)} answers: the faults were not exercised"
    h.assert_verify(mock, db_url, "faults")


def test_bad_records_are_rejected_with_their_text_and_awkward_ones_stored_intact(
    serve: StartMock, db_url: str
) -> None:
    config = MockConfig(events=30_000, bad_records=20, duplicates=15)
    truth = StreamTruth(config)
    mock = serve(config)

    summary = _completed(_ingest(mock, db_url), "bad records")
    _assert_exact(db_url, h.expected_ids(config), "bad records")
    h.assert_rejected_accounted(db_url, config, "bad records")
    assert summary["rejected"] == len(truth.bad_records()), summary
    empty = h.query(db_url, "SELECT count(*) FROM rejected_events WHERE raw = '' OR reason = ''")
    assert empty == [(0,)]

    # Escapes, non-BMP text and 256 KB properties come back exactly as served.
    awkward = {truth.stream.timeline.event_id(i): i for i in truth.stream.kinds
               if not truth.stream.is_bad(i)}
    rows = h.query(db_url, "SELECT id, data FROM ingested_events WHERE id = ANY(%s)",
                   (list(awkward),))
    assert len(rows) == len(awkward)
    for event_id, data in rows:
        served = truth.stream.record(awkward[event_id], epoch_only=True)
        stored = data if isinstance(data, dict) else json.loads(data)
        assert {k: v for k, v in stored.items() if k != "timestamp"} == {
            k: v for k, v in served.items() if k != "timestamp"
        }, f"{event_id} ({truth.stream.kinds[awkward[event_id]]}) changed on the way"

    out = h.assert_verify(mock, db_url, "bad records")
    assert "20 rejected" in out, out


def test_early_end_completes_but_verify_names_the_shortfall(
    serve: StartMock, db_url: str
) -> None:
    config = MockConfig(events=30_000, early_end=0.5)
    served = h.expected_ids(config, served_only=True)
    mock = serve(config)

    _completed(_ingest(mock, db_url), "early end")
    _assert_exact(db_url, served, "early end")

    shortfall = config.events - len(served)
    out = h.assert_verify(mock, db_url, "early end", expect=1)
    assert f"{shortfall:,} missing" in out, out
    result = h.run(h.verify_cmd(mock, db_url, "--json"), timeout=60)
    assert result.returncode == 1
    verdict = json.loads(result.stdout)
    assert (verdict["missing"], verdict["extra"], verdict["ok"]) == (shortfall, 0, False)
    assert verdict["expected"] == config.events


@pytest.mark.parametrize("workers", [1, 6])
def test_any_number_of_readers_lands_the_exact_set(
    serve: StartMock, db_url: str, workers: int
) -> None:
    config = MockConfig(events=30_000, latency_ms=10.0)
    mock = serve(config)

    _completed(
        _ingest(mock, db_url, "--workers", str(workers), "--page-size", "1000"),
        f"{workers} reader(s)",
    )
    _assert_exact(db_url, h.expected_ids(config), f"{workers} reader(s)")
    ranges = h.query(db_url, "SELECT count(*), bool_and(finished) FROM cursor_state")[0]
    assert ranges[1] is True, ranges
    if workers == 1:
        assert ranges[0] == 1, f"one reader split its range: {ranges}"
    else:
        assert ranges[0] > 1, f"{workers} readers never split the stream: {ranges}"
    h.assert_verify(mock, db_url, f"{workers} reader(s)")


def test_json_log_lines_parse_and_end_with_ingestion_complete(
    serve: StartMock, db_url: str
) -> None:
    config = MockConfig(events=10_000)
    mock = serve(config)

    result = _ingest(mock, db_url, "--page-size", "1000")
    h.assert_ingest_ok(result, "json logs")
    assert result.stderr == "", f"JSON mode wrote to stderr: {result.stderr[-1000:]}"
    records = h.json_lines(result.stdout)
    assert records, "no log lines"
    assert all(isinstance(r.get("level"), str) and r.get("ts") for r in records), records[:3]
    assert records[-1]["message"] == "ingestion complete", records[-1]
    summary = h.run_summary(result.stdout)
    for key in ("status", "fetched", "inserted", "rejected", "pages_by_endpoint", "elapsed_s"):
        assert key in summary, f"summary lacks {key}: {summary}"
    assert summary["inserted"] == config.events
    _assert_exact(db_url, h.expected_ids(config), "json logs")
    h.assert_verify(mock, db_url, "json logs")
