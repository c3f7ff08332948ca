"""What the operator is told, end to end: token changes and endpoint switches as JSON events in
the right order, and a rate that is true on the rate-limited standard endpoint."""

from __future__ import annotations

from typing import Any

import pytest

from datasync_cli.mockapi import MockConfig
from datasync_cli.pipeline.metrics import RATE_WINDOW_S

from . import harness as h
from .conftest import StartMock

pytestmark = pytest.mark.e2e


def _events(stdout: str) -> list[dict[str, Any]]:
    return [r for r in h.json_lines(stdout) if r.get("event")]


def test_short_lived_tokens_are_obtained_and_renewed_aloud(serve: StartMock, db_url: str) -> None:
    config = MockConfig(events=40_000, token_ttl=3.0, latency_ms=250.0)
    mock = serve(config)
    result = h.run(h.ingest_cmd(mock, db_url, "--page-size", "1000", "--workers", "2"))
    h.assert_ingest_ok(result, "short-lived tokens")
    names = [r["event"] for r in _events(result.stdout)]
    assert names[0] == "start" and names[-1] == "summary"
    assert names.index("token_obtained") < names.index("token_renewed")
    renewed = next(r for r in _events(result.stdout) if r["event"] == "token_renewed")
    assert renewed["expires_in_s"] == 3.0 and renewed["expires_at"].endswith("+00:00")
    assert "endpoint_switch" not in names  # renewed in time: the feed all along
    h.assert_exact_set(db_url, h.expected_ids(config), "short-lived tokens")


def test_a_refused_token_and_the_switch_to_the_standard_endpoint_are_announced(
    serve: StartMock, db_url: str
) -> None:
    config = MockConfig(events=150_000, no_stream_access=True, rate_limit=10, rate_window=8.0)
    mock = serve(config)
    result = h.run(h.ingest_cmd(mock, db_url, "--workers", "2"), timeout=150)
    h.assert_ingest_ok(result, "no stream access")
    records = h.json_lines(result.stdout)
    names = [r["event"] for r in records if r.get("event") and r["event"] != "progress"]
    refused = names.index("token_refused")
    switch = names.index("endpoint_switch")
    assert refused < switch
    event = next(r for r in records if r.get("event") == "endpoint_switch")
    assert (event["from"], event["to"]) == ("feed", "standard")
    assert "DASHBOARD_REQUIRED" in event["reason"] and "events/min" in event["message"]
    refusal = next(r for r in records if r.get("event") == "token_refused")
    assert refusal["code"] == "DASHBOARD_REQUIRED"
    summary = h.run_summary(result.stdout)
    assert set(summary["pages_by_endpoint"]) == {"standard"}
    # events/s is what was stored over wall time. While the window still reaches back to the
    # start, that is the stored count over the elapsed time (one page of slack: the count and
    # the rate are read a moment apart); after it, within a factor of 2 of the run's average.
    # (A rate from page timings showed tens of times more; the burst the service allows at
    # the start makes the first window's rate honestly higher than the average.)
    average = summary["inserted"] / summary["elapsed_s"]
    progress = [r for r in records if r.get("event") == "progress" and r["elapsed_s"] >= 10]
    assert progress, "no progress line after the first ten seconds"
    for line in progress:
        if line["elapsed_s"] < RATE_WINDOW_S - 1:
            told = line["stored"] / line["elapsed_s"]
            assert told * 0.85 <= line["events_per_s"] <= told * 1.15, (line, told)
        else:
            assert average / 2 <= line["events_per_s"] <= average * 2, (line, average)
        assert line["stored"] <= line["total"]
