"""The standard endpoint's fixed window and the feed's hidden throttle."""

from __future__ import annotations

import time

import requests

from datasync_cli.clock import FakeClock
from datasync_cli.mockapi import FEED_PATH

from .conftest import StartMock, keyed, stream_token


def test_fixed_window(start_mock: StartMock, http: requests.Session) -> None:
    clock = FakeClock()
    server = start_mock(rate_limit=3, rate_window=1.0, clock=clock)
    url = server.url + "/events"
    seen = []
    for _ in range(3):
        r = http.get(url, headers=keyed(server), params={"limit": 1})
        assert r.status_code == 200
        seen.append((r.headers["X-RateLimit-Limit"], r.headers["X-RateLimit-Remaining"],
                     r.headers["X-RateLimit-Reset"]))
    assert seen == [("3", "2", "1"), ("3", "1", "1"), ("3", "0", "1")]
    refused = http.get(url, headers=keyed(server))
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == refused.headers["X-RateLimit-Reset"] == "1"
    assert refused.json() == {
        "error": "Too Many Requests",
        "message": "Rate limit exceeded. Try again in 1 seconds.",
        "code": "RATE_LIMIT_EXCEEDED",
        "rateLimit": {"limit": 3, "remaining": 0, "reset": 1, "retryAfter": 1},
    }
    clock.advance(1.0)
    again = http.get(url, headers=keyed(server))
    assert again.status_code == 200 and again.headers["X-RateLimit-Remaining"] == "2"
    assert server.counters.rate_limited == 1


def test_window_starts_at_first_request_and_reset_is_relative(
    start_mock: StartMock, http: requests.Session
) -> None:
    clock = FakeClock()
    server = start_mock(rate_limit=10, rate_window=60, clock=clock)
    url = server.url + "/events"
    http.get(url, headers=keyed(server))
    clock.advance(14.5)
    r = http.get(url, headers=keyed(server))
    assert r.headers["X-RateLimit-Reset"] == "46" and r.headers["X-RateLimit-Remaining"] == "8"
    clock.advance(100)  # idle past the window: the next request opens a new one
    clock.advance(0.2)
    r = http.get(url, headers=keyed(server))
    assert r.headers["X-RateLimit-Reset"] == "60" and r.headers["X-RateLimit-Remaining"] == "9"


def test_refusals_and_lookups_count(start_mock: StartMock, http: requests.Session) -> None:
    clock = FakeClock()
    server = start_mock(rate_limit=3, rate_window=60, clock=clock)
    http.get(server.url + "/events/00000000-0000-4000-8000-000000000000", headers=keyed(server))
    http.get(server.url + "/events", headers=keyed(server), params={"cursor": "!!"})
    r = http.get(server.url + "/events", headers=keyed(server))
    assert r.status_code == 200 and r.headers["X-RateLimit-Remaining"] == "0"
    for _ in range(2):
        assert http.get(server.url + "/events", headers=keyed(server)).status_code == 429
    other = http.get(server.url + "/events", headers={"X-API-Key": "another-key"})
    assert other.status_code == 200  # windows are per key


def test_real_time_window(start_mock: StartMock, http: requests.Session) -> None:
    server = start_mock(rate_limit=2, rate_window=1.0)
    url = server.url + "/events"
    codes = [http.get(url, headers=keyed(server)).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    time.sleep(1.1)
    assert http.get(url, headers=keyed(server)).status_code == 200


def test_feed_throttle(start_mock: StartMock, http: requests.Session) -> None:
    clock = FakeClock()
    server = start_mock(feed_rate=0.5, feed_burst=2, clock=clock)
    headers = {**keyed(server), "X-Stream-Token": stream_token(http, server)}
    url = server.root_url + FEED_PATH
    assert [http.get(url, headers=headers).status_code for _ in range(2)] == [200, 200]
    refused = http.get(url, headers=headers)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "2"
    assert refused.json()["code"] == "RATE_LIMIT_EXCEEDED"
    assert not [h for h in refused.headers if h.lower().startswith("x-ratelimit")]
    clock.advance(2.0)
    assert http.get(url, headers=headers).status_code == 200
    assert server.counters.feed_throttled == 1


def test_feed_unthrottled_by_default(start_mock: StartMock, http: requests.Session) -> None:
    server = start_mock(rate_limit=1)
    headers = {**keyed(server), "X-Stream-Token": stream_token(http, server)}
    codes = {http.get(server.root_url + FEED_PATH, headers=headers).status_code
             for _ in range(30)}
    assert codes == {200}
