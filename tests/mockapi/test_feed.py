"""Stream tokens and the feed: browser-only token issue, expiry, epoch timestamps, since/until."""

from __future__ import annotations

import re

import pytest
import requests

from datasync_cli.clock import FakeClock
from datasync_cli.mockapi import FEED_PATH, TOKEN_PATH

from .conftest import StartMock, dashboard_headers, keyed, read_all, stream_token


def test_token_with_browser_headers(start_mock: StartMock, http: requests.Session) -> None:
    server = start_mock(token_ttl=300)
    r = http.post(server.root_url + TOKEN_PATH, headers=dashboard_headers(server), json={})
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json; charset=utf-8"
    body = r.json()
    access = body["streamAccess"]
    assert access["endpoint"] == "/api/v1/events/d4ta/x7k9/feed"
    assert re.fullmatch(r"[0-9a-f]{64}", access["token"])
    assert access["expiresIn"] == 300
    assert access["tokenHeader"] == "X-Stream-Token"
    assert set(body["meta"]) == {"generatedAt", "note"}
    assert server.counters.tokens_issued == 1


@pytest.mark.parametrize("missing", ["User-Agent", "Origin", "Referer", "Cookie"])
def test_token_needs_every_browser_header(
    start_mock: StartMock, http: requests.Session, missing: str
) -> None:
    server = start_mock()
    headers = dashboard_headers(server)
    headers[missing] = "python-requests/2.31" if missing == "User-Agent" else ""
    r = http.post(server.root_url + TOKEN_PATH, headers=headers)
    assert r.status_code == 403
    assert r.json() == {"error": "Forbidden", "message": "This endpoint requires dashboard access",
                        "code": "DASHBOARD_REQUIRED"}


def test_token_refuses_foreign_origin_and_wrong_cookie(
    start_mock: StartMock, http: requests.Session
) -> None:
    server = start_mock()
    for name, value in (("Origin", "http://evil.example"),
                        ("Cookie", "dashboard_api_key=someone-else")):
        headers = {**dashboard_headers(server), name: value}
        r = http.post(server.root_url + TOKEN_PATH, headers=headers)
        assert r.status_code == 403 and r.json()["code"] == "DASHBOARD_REQUIRED"


def test_token_needs_the_key(start_mock: StartMock, http: requests.Session) -> None:
    server = start_mock(api_key="right")
    headers = {**dashboard_headers(server), "X-API-Key": "wrong",
               "Cookie": "dashboard_api_key=wrong"}
    assert http.post(server.root_url + TOKEN_PATH, headers=headers).status_code == 401


def test_no_stream_access(start_mock: StartMock, http: requests.Session) -> None:
    server = start_mock(no_stream_access=True)
    r = http.post(server.root_url + TOKEN_PATH, headers=dashboard_headers(server))
    assert r.status_code == 403 and r.json()["code"] == "DASHBOARD_REQUIRED"


def test_feed_matches_standard_endpoint(start_mock: StartMock, http: requests.Session) -> None:
    server = start_mock(events=3_000)
    token = stream_token(http, server)
    feed = http.get(server.root_url + FEED_PATH, params={"limit": 3000},
                    headers={**keyed(server), "X-Stream-Token": token})
    assert feed.status_code == 200
    assert not [h for h in feed.headers if h.lower().startswith("x-ratelimit")]
    assert feed.headers["X-Request-ID"] == feed.json()["meta"]["requestId"]
    standard = http.get(server.url + "/events", headers=keyed(server),
                        params={"limit": 3000}).json()["data"]
    events = feed.json()["data"]
    assert all(isinstance(e["timestamp"], int) for e in events)
    assert [e["id"] for e in events] == [e["id"] for e in standard]
    for a, b in zip(events, standard, strict=True):
        assert {**a, "timestamp": None} == {**b, "timestamp": None}
        if isinstance(b["timestamp"], int):
            assert a["timestamp"] == b["timestamp"]


def test_feed_rejects_bad_tokens(start_mock: StartMock, http: requests.Session) -> None:
    clock = FakeClock()
    server = start_mock(token_ttl=30, clock=clock)
    url = server.root_url + FEED_PATH
    for token in (None, "0" * 64):
        headers = {**keyed(server), **({"X-Stream-Token": token} if token else {})}
        r = http.get(url, headers=headers)
        assert r.status_code == 403 and r.json()["code"] == "INVALID_STREAM_TOKEN"
    old = stream_token(http, server)
    clock.advance(20)
    new = stream_token(http, server)
    assert new != old
    assert http.get(url, headers={**keyed(server), "X-Stream-Token": old}).status_code == 200
    clock.advance(11)
    expired = http.get(url, headers={**keyed(server), "X-Stream-Token": old})
    assert expired.status_code == 403 and expired.json()["code"] == "INVALID_STREAM_TOKEN"
    assert http.get(url, headers={**keyed(server), "X-Stream-Token": new}).status_code == 200
    assert http.get(url, headers={"X-Stream-Token": new}).status_code == 401


def test_feed_since_until_inclusive(start_mock: StartMock, http: requests.Session) -> None:
    server = start_mock(events=3_000)
    headers = {**keyed(server), "X-Stream-Token": stream_token(http, server)}
    url = server.root_url + FEED_PATH
    everything = http.get(url, headers=headers, params={"limit": 5000}).json()["data"]
    until, since = everything[700]["timestamp"], everything[2100]["timestamp"]
    expected = [e["id"] for e in everything if since <= e["timestamp"] <= until]
    assert expected[0] == everything[700]["id"] or everything[699]["timestamp"] == until
    records, bodies = read_all(http, url, headers, limit=500,
                               params={"since": since, "until": until})
    assert [e["id"] for e in records] == expected
    assert len(bodies) > 2 and bodies[-1]["pagination"]["nextCursor"] is None
    assert all(b["meta"]["total"] == 3_000 for b in bodies)


def test_feed_rejects_non_numeric_bounds(start_mock: StartMock, http: requests.Session) -> None:
    server = start_mock()
    headers = {**keyed(server), "X-Stream-Token": stream_token(http, server)}
    r = http.get(server.root_url + FEED_PATH, headers=headers, params={"since": "yesterday"})
    assert r.status_code == 400 and r.json()["code"] == "INVALID_PARAMETER"
