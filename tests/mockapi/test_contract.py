"""The standard endpoint, cursors and auth behave as docs/api-notes.md ("The protocol")
describes."""

from __future__ import annotations

import base64
import re
import time
from datetime import datetime

import pytest
import requests

from datasync_cli.clock import FakeClock
from datasync_cli.mockapi import decode_cursor
from datasync_cli.mockapi.timeline import Timeline

from .conftest import StartMock, forge_cursor, keyed, read_all

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def instant_ms(stamp: int | str) -> int:
    if isinstance(stamp, int):
        return stamp
    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)


def test_envelope_and_headers(start_mock: StartMock, http: requests.Session) -> None:
    server = start_mock(events=300)
    r = http.get(server.url + "/events", headers=keyed(server), params={"limit": 50})
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json; charset=utf-8"
    assert r.headers["X-Powered-By"] == "Express"
    assert int(r.headers["Content-Length"]) == len(r.content)
    body = r.json()
    assert set(body) == {"data", "pagination", "meta"}
    assert body["meta"] == {"total": 300, "returned": 50, "requestId": r.headers["X-Request-ID"]}
    assert body["pagination"]["limit"] == 50
    assert body["pagination"]["hasMore"] is True
    assert body["pagination"]["cursorExpiresIn"] == 117
    event = body["data"][0]
    assert set(event) == {"id", "sessionId", "userId", "type", "name", "properties",
                          "timestamp", "session"}
    assert UUID.match(event["id"]) and UUID.match(event["sessionId"])
    assert event["session"]["id"] == event["sessionId"]
    assert set(event["session"]) == {"id", "deviceType", "browser"}


def test_default_limit_and_clamp(start_mock: StartMock, http: requests.Session) -> None:
    server = start_mock(events=6_000)
    default = http.get(server.url + "/events", headers=keyed(server)).json()
    assert default["pagination"]["limit"] == 100 and default["meta"]["returned"] == 100
    big = http.get(server.url + "/events", headers=keyed(server), params={"limit": 99999}).json()
    assert big["pagination"]["limit"] == 5000 and big["meta"]["returned"] == 5000


def test_info_and_unknown_paths(start_mock: StartMock, http: requests.Session) -> None:
    server = start_mock()
    info = http.get(server.url, headers=keyed(server))
    assert info.status_code == 200 and info.json()["name"] == "DataSync Analytics API"
    for method, path in (("GET", "/api/v1/nope"), ("POST", "/api/v1/events"), ("GET", "/")):
        r = http.request(method, server.root_url + path, headers=keyed(server))
        assert r.status_code == 404
        assert r.json() == {"error": "Not Found",
                            "message": "The requested endpoint does not exist",
                            "code": "ENDPOINT_NOT_FOUND"}


def test_info_needs_a_key(start_mock: StartMock, http: requests.Session) -> None:
    lenient = start_mock()
    missing = http.get(lenient.url)
    assert missing.status_code == 401 and missing.json()["code"] == "UNAUTHORIZED"
    assert http.get(lenient.url, params={"api_key": "anything"}).status_code == 200
    strict = start_mock(api_key="the-key")
    assert http.get(strict.url, headers={"X-API-Key": "other"}).status_code == 401
    assert http.get(strict.url, headers={"X-API-Key": "the-key"}).status_code == 200


def test_auth(start_mock: StartMock, http: requests.Session) -> None:
    strict = start_mock(api_key="the-key")
    assert http.get(strict.url + "/events").status_code == 401
    wrong = http.get(strict.url + "/events", headers={"X-API-Key": "other"})
    assert wrong.status_code == 401 and wrong.json()["code"] == "UNAUTHORIZED"
    assert http.get(strict.url + "/events", headers={"X-API-Key": "the-key"}).status_code == 200
    lenient = start_mock()
    assert http.get(lenient.url + "/events", headers={"X-API-Key": "anything"}).status_code == 200
    assert http.get(lenient.url + "/events", headers={"X-API-Key": ""}).status_code == 401


def test_query_key_gets_half_the_limit(start_mock: StartMock, http: requests.Session) -> None:
    server = start_mock(rate_limit=10, clock=FakeClock())
    r = http.get(server.url + "/events", params={"api_key": "k"})
    assert r.status_code == 200 and r.headers["X-RateLimit-Limit"] == "5"
    r = http.get(server.url + "/events", headers={"X-API-Key": "k"})
    assert r.headers["X-RateLimit-Limit"] == "10"


def test_order_ties_and_mixed_timestamps(start_mock: StartMock, http: requests.Session) -> None:
    server = start_mock(events=5_000)
    data = http.get(server.url + "/events", headers=keyed(server),
                    params={"limit": 5000}).json()["data"]
    stamps = [instant_ms(e["timestamp"]) for e in data]
    assert stamps == sorted(stamps, reverse=True)
    ties = [k for k in range(1, len(data)) if stamps[k] == stamps[k - 1]]
    assert len(ties) > 100
    assert all(data[k - 1]["id"] < data[k]["id"] for k in ties)  # documented: id ascending
    assert any(stamps[k] == stamps[k - 1] == stamps[k - 2] for k in range(2, len(data)))
    numbers = sum(isinstance(e["timestamp"], int) for e in data)
    assert 0.25 < numbers / len(data) < 0.42
    strings = [e["timestamp"] for e in data if isinstance(e["timestamp"], str)]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", s) for s in strings)
    assert min(stamps) > 1_766_900_000_000 and max(stamps) <= 1_769_558_400_000


def test_same_event_same_form(start_mock: StartMock, http: requests.Session) -> None:
    server = start_mock(events=500)
    first = http.get(server.url + "/events", headers=keyed(server), params={"limit": 200})
    again = http.get(server.url + "/events", headers=keyed(server), params={"limit": 200})
    assert first.json()["data"] == again.json()["data"]


def test_tie_across_page_boundary(start_mock: StartMock, http: requests.Session) -> None:
    server = start_mock(events=3_000)
    timeline = Timeline(server.config.seed, server.config.events)
    boundary = next(i for i in range(100, 3_000) if timeline.ts(i) == timeline.ts(i - 1))
    page1 = http.get(server.url + "/events", headers=keyed(server),
                     params={"limit": boundary}).json()
    cursor = page1["pagination"]["nextCursor"]
    page2 = http.get(server.url + "/events", headers=keyed(server),
                     params={"limit": 100, "cursor": cursor}).json()
    last, first = page1["data"][-1], page2["data"][0]
    assert instant_ms(last["timestamp"]) == instant_ms(first["timestamp"])
    assert last["id"] < first["id"]
    both = http.get(server.url + "/events", headers=keyed(server),
                    params={"limit": boundary + 100}).json()["data"]
    assert [e["id"] for e in both] == [e["id"] for e in page1["data"] + page2["data"]]


def test_cursor_round_trip(start_mock: StartMock, http: requests.Session) -> None:
    server = start_mock(events=12_000)
    records, bodies = read_all(http, server.url + "/events", keyed(server))
    assert [b["meta"]["returned"] for b in bodies] == [5000, 5000, 2000]
    assert len({e["id"] for e in records}) == 12_000
    last = bodies[-1]["pagination"]
    assert last == {"limit": 5000, "hasMore": False, "nextCursor": None, "cursorExpiresIn": None}
    cursor = decode_cursor(bodies[0]["pagination"]["nextCursor"])
    assert cursor.event_id == records[4999]["id"]
    assert cursor.ts_ms == instant_ms(records[4999]["timestamp"])


def test_cursor_is_standard_base64_json(start_mock: StartMock, http: requests.Session) -> None:
    clock = FakeClock()
    server = start_mock(clock=clock)
    body = http.get(server.url + "/events", headers=keyed(server), params={"limit": 10}).json()
    raw = base64.b64decode(body["pagination"]["nextCursor"], validate=True)
    assert raw.startswith(b'{"id":"') and b" " not in raw
    decoded = decode_cursor(body["pagination"]["nextCursor"])
    assert decoded.exp_ms == int(clock.wall() * 1000) + 117_000


def test_cursor_expiry(start_mock: StartMock, http: requests.Session) -> None:
    clock = FakeClock()
    server = start_mock(clock=clock)
    first = http.get(server.url + "/events", headers=keyed(server), params={"limit": 10}).json()
    cursor = first["pagination"]["nextCursor"]
    clock.advance(116)
    ok = http.get(server.url + "/events", headers=keyed(server), params={"cursor": cursor})
    assert ok.status_code == 200
    clock.advance(1 + 3 * 60)
    r = http.get(server.url + "/events", headers=keyed(server), params={"cursor": cursor})
    assert r.status_code == 400
    assert r.json() == {"error": "Bad Request", "message": "Cursor expired 3 minute(s) ago",
                        "code": "CURSOR_EXPIRED"}


def test_short_cursor_ttl_in_real_time(start_mock: StartMock, http: requests.Session) -> None:
    server = start_mock(cursor_ttl=0.3)
    body = http.get(server.url + "/events", headers=keyed(server), params={"limit": 10}).json()
    assert body["pagination"]["cursorExpiresIn"] == 0.3
    time.sleep(0.5)
    r = http.get(server.url + "/events", headers=keyed(server),
                 params={"cursor": body["pagination"]["nextCursor"]})
    assert r.status_code == 400 and r.json()["code"] == "CURSOR_EXPIRED"


@pytest.mark.parametrize("urlsafe", [False, True])
@pytest.mark.parametrize("padded", [False, True])
def test_forged_cursor_positions(
    start_mock: StartMock, http: requests.Session, urlsafe: bool, padded: bool
) -> None:
    clock = FakeClock()
    server = start_mock(clock=clock)
    data = http.get(server.url + "/events", headers=keyed(server),
                    params={"limit": 1000}).json()["data"]
    exp = int(clock.wall() * 1000) + 60_000
    k = 500
    # Base64 of ASCII JSON has '+' or '/' only where a byte like '~' ends a 3-byte group; an id
    # with '~' appended sorts right after the real id, so the position is still "after k".
    event_id = next(
        candidate
        for candidate in (data[k]["id"] + "~" * n for n in range(1, 4))
        if set(forge_cursor(candidate, instant_ms(data[k]["timestamp"]), exp, False, True))
        & {"+", "/"}
    )
    cursor = forge_cursor(event_id, instant_ms(data[k]["timestamp"]), exp, urlsafe, padded)
    assert cursor.endswith("=") == padded
    page = http.get(server.url + "/events", headers=keyed(server),
                    params={"cursor": cursor, "limit": "5"}).json()
    assert [e["id"] for e in page["data"]] == [e["id"] for e in data[k + 1 : k + 6]]


def test_forged_cursor_between_events(start_mock: StartMock, http: requests.Session) -> None:
    clock = FakeClock()
    server = start_mock(clock=clock)
    data = http.get(server.url + "/events", headers=keyed(server),
                    params={"limit": 1000}).json()["data"]
    exp = int(clock.wall() * 1000) + 60_000
    k = next(k for k in range(1, 999)
             if instant_ms(data[k]["timestamp"]) > instant_ms(data[k + 1]["timestamp"]) + 1)
    # An unknown id at a timestamp strictly between two events: resumes at the older one.
    cursor = forge_cursor("x", instant_ms(data[k]["timestamp"]) - 1, exp, False, True)
    page = http.get(server.url + "/events", headers=keyed(server),
                    params={"cursor": cursor, "limit": "1"}).json()
    assert page["data"][0]["id"] == data[k + 1]["id"]


def test_forged_cursor_outside_the_stream(start_mock: StartMock, http: requests.Session) -> None:
    clock = FakeClock()
    server = start_mock(clock=clock)
    exp = int(clock.wall() * 1000) + 60_000
    first = http.get(server.url + "/events", headers=keyed(server), params={"limit": 3}).json()
    newer = forge_cursor("ffffffff", 1_900_000_000_000, exp, False, True)
    page = http.get(server.url + "/events", headers=keyed(server),
                    params={"cursor": newer, "limit": "3"}).json()
    assert page["data"] == first["data"]
    older = forge_cursor("00000000", 1_000_000_000_000, exp, True, False)
    end = http.get(server.url + "/events", headers=keyed(server), params={"cursor": older}).json()
    assert end["data"] == [] and end["meta"]["returned"] == 0
    assert end["pagination"]["hasMore"] is False and end["pagination"]["nextCursor"] is None
    assert end["pagination"]["cursorExpiresIn"] is None


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64 at all!",
        base64.b64encode(b"plain text, not json").decode(),
        base64.b64encode(b'{"ts": 1, "exp": 99999999999999}').decode(),
        base64.b64encode(b'["id", 1]').decode(),
        base64.b64encode(b'{"id": "a", "ts": "soon", "exp": 99999999999999}').decode(),
        "abcde",
    ],
)
def test_invalid_cursor(start_mock: StartMock, http: requests.Session, cursor: str) -> None:
    server = start_mock()
    r = http.get(server.url + "/events", headers=keyed(server), params={"cursor": cursor})
    assert r.status_code == 400
    assert r.json()["code"] == "CURSOR_INVALID_FORMAT"
    assert "X-RateLimit-Remaining" in r.headers


def test_single_event(start_mock: StartMock, http: requests.Session) -> None:
    server = start_mock(events=3_000)
    data = http.get(server.url + "/events", headers=keyed(server),
                    params={"limit": 3000}).json()["data"]
    for event in data[::250]:
        r = http.get(server.url + "/events/" + event["id"], headers=keyed(server))
        assert r.status_code == 200 and r.json() == {"data": event}
        assert "X-RateLimit-Remaining" in r.headers
    missing = http.get(server.url + "/events/56a349b5-7243-4e0c-9fd8-f2c1eb2a5d35",
                       headers=keyed(server))
    assert missing.status_code == 404 and missing.json()["code"] == "EVENT_NOT_FOUND"
    assert "X-RateLimit-Remaining" in missing.headers


def test_tokens_issued_are_counted(start_mock: StartMock, http: requests.Session) -> None:
    server = start_mock()
    http.get(server.url + "/events", headers=keyed(server))
    http.get(server.url + "/nope", headers=keyed(server))
    assert server.counters.requests["events"] == 1
    assert server.counters.requests["not_found"] == 1


def test_three_million_events_are_addressable(
    start_mock: StartMock, http: requests.Session
) -> None:
    clock = FakeClock()
    server = start_mock(events=3_000_000, clock=clock)
    first = http.get(server.url + "/events", headers=keyed(server), params={"limit": 5}).json()
    assert first["meta"]["total"] == 3_000_000
    timeline = Timeline(server.config.seed, 3_000_000)
    exp = int(clock.wall() * 1000) + 60_000
    near_end = forge_cursor(timeline.event_id(2_999_990), timeline.ts(2_999_990), exp, False, True)
    tail = http.get(server.url + "/events", headers=keyed(server),
                    params={"cursor": near_end, "limit": "5000"}).json()
    assert tail["meta"]["returned"] == 9 and tail["pagination"]["hasMore"] is False
    assert tail["data"][-1]["id"] == timeline.event_id(2_999_999)
