"""Every fault knob produces the fault it names, and only when asked."""

from __future__ import annotations

from collections import Counter

import orjson
import pytest
import requests

from datasync_cli.mockapi import FEED_PATH, MockConfig, StreamTruth
from datasync_cli.mockapi.faults import HUGE_PROPERTY_CHARS, OPTIONAL_FIELDS

from .conftest import StartMock, keyed, read_all, stream_token


def test_5xx(start_mock: StartMock, http: requests.Session) -> None:
    server = start_mock(p5xx=1.0, rate_limit=2)
    statuses: Counter[int] = Counter()
    for _ in range(40):
        r = http.get(server.url + "/events", headers=keyed(server))
        statuses[r.status_code] += 1
        assert "X-RateLimit-Remaining" not in r.headers  # failed before the app counted it
        if r.status_code in (500, 503):
            assert r.json()["code"] in ("INTERNAL_ERROR", "SERVICE_UNAVAILABLE")
        else:
            assert r.headers["Content-Type"].startswith("text/html")
    assert set(statuses) == {500, 502, 503, 504}
    assert server.counters.faults["5xx"] == 40


def test_truncated_body(start_mock: StartMock, http: requests.Session) -> None:
    server = start_mock(p_truncate=1.0)
    for path in ("/events", "/events?limit=500"):
        r = http.get(server.url + path, headers=keyed(server))
        assert r.status_code == 200
        assert int(r.headers["Content-Length"]) == len(r.content)
        assert r.content.startswith(b'{"data":[') or len(r.content) < 9
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(r.content)
    info = http.get(server.url, headers=keyed(server))
    assert info.json()["version"] == "v1"  # only data responses are cut


def test_dropped_connection(start_mock: StartMock, http: requests.Session) -> None:
    server = start_mock(p_drop=1.0)
    with pytest.raises(requests.ConnectionError):
        http.get(server.url + "/events", headers=keyed(server))
    assert server.counters.faults["drop"] == 1
    assert http.get(server.url, headers=keyed(server)).status_code == 200


def test_faults_are_occasional(start_mock: StartMock, http: requests.Session) -> None:
    server = start_mock(p5xx=0.3)
    codes = Counter(
        http.get(server.url + "/events", headers=keyed(server)).status_code for _ in range(60)
    )
    assert codes[200] > 20 and sum(codes.values()) - codes[200] > 5


def test_bad_and_awkward_records(start_mock: StartMock, http: requests.Session) -> None:
    server = start_mock(events=4_000, bad_records=10)
    truth = StreamTruth(server.config)
    records, _ = read_all(http, server.url + "/events", keyed(server))
    assert len(records) == 4_000
    bad = truth.bad_records()
    assert Counter(b.kind for b in bad) == {
        "missing_id": 2, "empty_id": 2, "bad_timestamp": 2, "null_timestamp": 2, "nul_char": 2
    }
    for b in bad:
        record = records[b.index]
        if b.kind == "missing_id":
            assert "id" not in record
        else:
            assert record["id"] == b.served_id
        if b.kind == "bad_timestamp":
            assert isinstance(record["timestamp"], str) and "T99:" in record["timestamp"]
        if b.kind == "null_timestamp":
            assert record["timestamp"] is None
        if b.kind == "nul_char":
            assert "\x00" in orjson.dumps(record).decode("unicode_escape")
    awkward = {r["id"]: r for r in records if r.get("id") in set(truth.awkward_ids())}
    assert len(awkward) == 10
    texts = [orjson.dumps(r["properties"]).decode() for r in awkward.values()]
    assert any("\\n" in t and "\\t" in t and "\\\\" in t for t in texts)
    assert any(any(ord(c) > 0xFFFF for c in t) for t in texts)
    assert any(len(t) > HUGE_PROPERTY_CHARS for t in texts)


def test_duplicates(start_mock: StartMock, http: requests.Session) -> None:
    server = start_mock(events=12_000, duplicates=6)
    records, bodies = read_all(http, server.url + "/events", keyed(server))
    ids = [r["id"] for r in records]
    repeated = {i for i, n in Counter(ids).items() if n > 1}
    assert repeated == set(StreamTruth(server.config).duplicate_ids())
    assert len(repeated) == 6 and len(records) == 12_006
    assert bodies[0]["meta"]["total"] == len(set(ids)) == 12_000
    later_page = 0
    for event_id in repeated:
        first = ids.index(event_id)
        second = ids.index(event_id, first + 1)
        assert second - first > 100
        later_page += second // 5000 > first // 5000
    assert later_page >= len(repeated) // 2
    assert all(b["meta"]["returned"] <= 5000 for b in bodies)


def test_duplicates_on_small_pages_never_end_a_page(
    start_mock: StartMock, http: requests.Session
) -> None:
    server = start_mock(events=6_000, duplicates=20)
    records, bodies = read_all(http, server.url + "/events", keyed(server), limit=7)
    assert len({r["id"] for r in records}) == 6_000
    assert len(records) == 6_020
    seen: set[str] = set()
    for body in bodies:
        if body["data"]:
            assert body["data"][-1]["id"] not in seen  # the cursor follows a first showing
        seen.update(r["id"] for r in body["data"])


def test_early_end(start_mock: StartMock, http: requests.Session) -> None:
    server = start_mock(events=12_000, early_end=0.5)
    records, bodies = read_all(http, server.url + "/events", keyed(server))
    assert len(records) == 6_000
    assert bodies[-1]["meta"]["total"] == 12_000
    summary = StreamTruth(server.config).summary()
    assert summary.served_valid_count == 6_000 and summary.valid_count == 12_000


def test_missing_fields_on_the_feed(start_mock: StartMock, http: requests.Session) -> None:
    server = start_mock(events=1_000, p_missing_fields=1.0)
    headers = {**keyed(server), "X-Stream-Token": stream_token(http, server)}
    r = http.get(server.root_url + FEED_PATH, headers=headers, params={"limit": 1000})
    assert r.headers["X-Chaos-Applied"] == "missingFields"
    events = r.json()["data"]
    stripped = [e for e in events if not set(OPTIONAL_FIELDS) <= set(e)]
    assert 100 < len(stripped) < 500
    assert all({"id", "type", "timestamp"} <= set(e) for e in events)
    standard = http.get(server.url + "/events", headers=keyed(server), params={"limit": 1000})
    assert "X-Chaos-Applied" not in standard.headers
    assert all(set(OPTIONAL_FIELDS) <= set(e) for e in standard.json()["data"])


def test_extra_ids(start_mock: StartMock, http: requests.Session) -> None:
    server = start_mock(events=3_000, extra_ids=3)
    records, bodies = read_all(http, server.url + "/events", keyed(server))
    assert len({r["id"] for r in records}) == bodies[0]["meta"]["total"] + 3


def test_faults_are_off_by_default() -> None:
    config = MockConfig()
    assert (config.p5xx, config.p_truncate, config.p_drop, config.p_missing_fields) == (0, 0, 0, 0)
    assert (config.bad_records, config.duplicates, config.extra_ids) == (0, 0, 0)
    assert config.early_end == 1.0 and config.feed_rate == 0


@pytest.mark.parametrize(
    "overrides",
    [{"p5xx": 1.5}, {"early_end": 0.0}, {"bad_records": 600, "events": 1000},
     {"rate_window": 0}, {"api_key": ""}, {"extra_ids": 5, "events": 2}],
)
def test_invalid_settings(overrides: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        MockConfig(**overrides)  # type: ignore[arg-type]
