"""RangeReader over a small DataSync-like service made with `responses` and the fake clock."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import responses

from datasync_cli.clock import FakeClock
from datasync_cli.errors import FatalSourceError, SourceError
from datasync_cli.models import Checkpoint, Page, Position
from datasync_cli.settings import Settings
from datasync_cli.source import (
    ApiClient,
    RangeCursor,
    Source,
    SourceConfig,
    StreamTokens,
    cursor_position,
    decode_cursor,
    encode_cursor,
    fetch_total,
    open_source,
)
from datasync_cli.source.pagination import STALL_LIMIT
from datasync_cli.transform import transform_page

HOST = "http://svc.test"
BASE = f"{HOST}/api/v1"
FEED_PATH = "/api/v1/events/d4ta/x7k9/feed"
KEY = "live-KEY-0123456789"


def _iso(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def _ts_ms(value: Any) -> int:
    if isinstance(value, int):
        return value
    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)


@dataclass
class Service:
    """The documented protocol, small: newest first, ties broken by id, cursors of (ts, id)."""

    clock: FakeClock
    events: list[tuple[int, str]]
    rate_limit: int = 1000
    rate_window_s: float = 60.0
    cursor_ttl_ms: int = 117_000
    token_ttl_s: int = 300
    issue_tokens: bool = True
    valid_tokens: set[str] = field(default_factory=set)
    faults: list[tuple[int, Any]] = field(default_factory=list)
    stuck_cursor: str | None = None
    log: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    window_start: float | None = None
    window_used: int = 0
    issued: int = 0

    def __post_init__(self) -> None:
        # Newest first; among equal timestamps, ascending id.
        self.events.sort(key=lambda e: (-e[0], e[1]))

    def install(self, mock: responses.RequestsMock) -> None:
        mock.add_callback(responses.GET, f"{BASE}/events", callback=self.standard)
        mock.add_callback(responses.GET, f"{HOST}{FEED_PATH}", callback=self.feed)
        mock.add_callback(
            responses.POST, f"{HOST}/internal/dashboard/stream-access", callback=self.access
        )

    def _reply(self, status: int, body: Any, headers: dict[str, str] | None = None) -> Any:
        text = body if isinstance(body, str) else json.dumps(body)
        return status, headers or {}, text

    def _error(self, status: int, code: str, headers: dict[str, str] | None = None) -> Any:
        return self._reply(status, {"error": "x", "message": code.lower(), "code": code}, headers)

    def _page(self, request: requests.PreparedRequest, feed: bool) -> Any:
        params = dict(parse_qsl(urlsplit(request.url or "").query))
        self.log.append(("feed" if feed else "standard", params))
        if self.faults:
            status, body = self.faults.pop(0)
            return self._reply(status, body)
        if request.headers.get("X-API-Key") != KEY:
            return self._error(401, "UNAUTHORIZED")
        limit = min(int(params.get("limit", 100)), 5000)
        rows = self.events
        if feed:
            since, until = params.get("since"), params.get("until")
            rows = [
                e
                for e in rows
                if (since is None or e[0] >= int(since)) and (until is None or e[0] <= int(until))
            ]
        cursor = params.get("cursor")
        if cursor:
            fields = decode_cursor(cursor)
            position = cursor_position(cursor)
            if fields is None or position is None:
                return self._error(400, "CURSOR_INVALID_FORMAT")
            if fields.get("exp", 0) < self.clock.wall() * 1000:
                return self._error(400, "CURSOR_EXPIRED")
            after = (position.ts_ms, position.event_id)
            rows = [e for e in rows if (-e[0], e[1]) > (-after[0], after[1])]
        chunk, more = rows[:limit], len(rows) > limit
        nxt = (
            encode_cursor(
                chunk[-1][1], chunk[-1][0], int(self.clock.wall() * 1000) + self.cursor_ttl_ms
            )
            if more
            else None
        )
        if self.stuck_cursor is not None and cursor:
            nxt, more = cursor, True
        data = [
            {"id": i, "type": "click", "timestamp": ts if feed or n % 3 == 0 else _iso(ts)}
            for n, (ts, i) in enumerate(chunk)
        ]
        body = {
            "data": data,
            "pagination": {"limit": limit, "hasMore": more, "nextCursor": nxt},
            "meta": {"total": len(self.events), "returned": len(data)},
        }
        return self._reply(200, body)

    def standard(self, request: requests.PreparedRequest) -> Any:
        now = self.clock.monotonic()
        if self.window_start is None or now >= self.window_start + self.rate_window_s:
            self.window_start, self.window_used = now, 0
        self.window_used += 1
        reset = max(0, round(self.window_start + self.rate_window_s - now))
        headers = {
            "X-RateLimit-Limit": str(self.rate_limit),
            "X-RateLimit-Remaining": str(max(0, self.rate_limit - self.window_used)),
            "X-RateLimit-Reset": str(reset),
        }
        if self.window_used > self.rate_limit:
            self.log.append(("standard-429", {}))
            return self._error(429, "RATE_LIMIT_EXCEEDED", {**headers, "Retry-After": str(reset)})
        status, base, text = self._page(request, feed=False)
        return status, {**base, **headers}, text

    def feed(self, request: requests.PreparedRequest) -> Any:
        if request.headers.get("X-Stream-Token") not in self.valid_tokens:
            self.log.append(("feed-403", {}))
            return self._error(403, "INVALID_STREAM_TOKEN")
        return self._page(request, feed=True)

    def access(self, request: requests.PreparedRequest) -> Any:
        self.log.append(("stream-access", {}))
        looks_right = (
            request.headers.get("Cookie") == f"dashboard_api_key={KEY}"
            and request.headers.get("User-Agent", "").startswith("Mozilla/5.0")
            and request.headers.get("Origin") == HOST
        )
        if not (self.issue_tokens and looks_right):
            return self._error(403, "DASHBOARD_REQUIRED")
        self.issued += 1
        token = f"{self.issued:064x}"
        self.valid_tokens.add(token)
        access = {"endpoint": FEED_PATH, "token": token, "expiresIn": self.token_ttl_s}
        return self._reply(200, {"streamAccess": {**access, "tokenHeader": "X-Stream-Token"}})

    def endpoints(self) -> list[str]:
        return [kind for kind, _ in self.log]


def _events(
    count: int, newest: int = 1_769_500_000_000, step: int = 1000, ties: int = 1
) -> list[tuple[int, str]]:
    return [(newest - (n // ties) * step, f"evt-{n:05d}") for n in range(count)]


def _source(
    clock: FakeClock, *, token: str | None = None, can_issue: bool = True, page_size: int = 3
) -> Source:
    """A source on the fake service; `can_issue=False` leaves it no way to ask for tokens."""
    config = SourceConfig(BASE, KEY, token, page_size=page_size, max_attempts=4, readers=2)
    client = ApiClient(BASE, KEY, clock=clock)
    tokens = None if can_issue else StreamTokens(clock, None, token, config.token_ttl)
    return Source(config, client, clock, threading.Event(), tokens=tokens)


def _advance(checkpoint: Checkpoint, page: Page) -> Checkpoint:
    """The range's checkpoint after storing `page`, as RangeCursor hands it to the pipeline."""
    events, rejected = transform_page(page.records)
    return RangeCursor(checkpoint).advance(page, events, len(rejected)).checkpoint


def _read_all(
    source: Source, checkpoint: Checkpoint, *, between: Any = None, max_pages: int = 200
) -> list[str]:
    reader, ids = source.reader(), []
    cursor = RangeCursor(checkpoint)
    for _ in range(max_pages):
        page = reader.fetch(cursor)
        events, rejected = transform_page(page.records)
        step = cursor.advance(page, events, len(rejected))
        ids += [e.id for e in step.inside]
        if step.finished:
            return ids
        if between is not None:
            between(step.checkpoint)
    raise AssertionError("the reader did not finish")


def test_standard_pagination_reads_everything_once() -> None:
    clock = FakeClock()
    service = Service(clock, _events(10, ties=2))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        service.install(mock)
        ids = _read_all(_source(clock, can_issue=False), Checkpoint("r0"))
    assert ids == [i for _, i in service.events]
    assert set(service.endpoints()) == {"standard"}


def test_rate_limit_headers_pace_requests_without_429s() -> None:
    clock = FakeClock()
    service = Service(clock, _events(20), rate_limit=3, rate_window_s=60)
    source = _source(clock, can_issue=False)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        service.install(mock)
        ids = _read_all(source, Checkpoint("r0"))
    assert len(ids) == 20
    assert "standard-429" not in service.endpoints()
    long_waits = [s for s in clock.sleeps if s > 30]
    assert len(long_waits) == 2  # 7 pages at 3 per window: two waits for a reset
    assert all(60 <= s <= 62 for s in long_waits)
    assert source.health().rate_wait_s == pytest.approx(sum(long_waits), rel=0.05)


def test_a_429_pauses_and_retries_after_retry_after() -> None:
    clock = FakeClock()
    service = Service(clock, _events(6), rate_limit=100)
    source = _source(clock, can_issue=False)
    answered = []

    def first_429(request: requests.PreparedRequest) -> Any:
        answered.append(request.url)
        if len(answered) == 1:
            return 429, {"Retry-After": "7"}, json.dumps({"code": "RATE_LIMIT_EXCEEDED"})
        return service.standard(request)

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback(responses.GET, f"{BASE}/events", callback=first_429)
        page = source.reader().fetch(RangeCursor(Checkpoint("r0")))
    assert len(page.records) == 3 and len(answered) == 2
    assert clock.sleeps == [7.0]
    assert source.health().rate_limited == 1


def test_truncated_body_is_retried_with_backoff() -> None:
    clock = FakeClock()
    service = Service(clock, _events(4))
    service.faults = [(200, '{"data": [{"id": "evt-0'), (502, {"code": "BAD_GATEWAY"})]
    source = _source(clock, can_issue=False)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        service.install(mock)
        ids = _read_all(source, Checkpoint("r0"))
    assert ids == [i for _, i in service.events]
    assert source.health().retries == 2
    assert len([s for s in clock.sleeps if s <= 1.0]) >= 2


def test_persistent_failure_ends_in_one_clear_fatal_error() -> None:
    clock = FakeClock()
    service = Service(clock, _events(4))
    service.faults = [(503, {"code": "UNAVAILABLE"})] * 10
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        service.install(mock)
        with pytest.raises(FatalSourceError) as caught:
            _source(clock, can_issue=False).reader().fetch(RangeCursor(Checkpoint("r0")))
    assert "giving up on the events endpoint after 4 attempts" in str(caught.value)


def test_an_expired_cursor_is_rebuilt_from_the_last_event_at_once() -> None:
    clock = FakeClock()
    service = Service(clock, _events(12, ties=4))  # ties straddle every page boundary
    source = _source(clock, can_issue=False)
    sleeps_before: list[int] = []

    def downtime(_: Checkpoint) -> None:
        clock.advance(200)  # longer than the cursor lives
        sleeps_before.append(len(clock.sleeps))

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        service.install(mock)
        ids = _read_all(source, Checkpoint("r0"), between=downtime)
    assert ids == [i for _, i in service.events]
    sent = [p.get("cursor") for kind, p in service.log if kind == "standard"]
    # Each expired cursor was followed at once by a forged one for the same position.
    assert len(sent) == 7  # the first page, then three expired cursors each rebuilt
    for expired, forged in zip(sent[1::2], sent[2::2], strict=True):
        old, new = decode_cursor(expired), decode_cursor(forged)
        assert old is not None and new is not None
        assert (new["ts"], new["id"]) == (old["ts"], old["id"])
        assert new["exp"] > old["exp"]
    assert len(clock.sleeps) == 0


def test_forged_cursor_names_the_last_stored_event_exactly() -> None:
    clock = FakeClock()
    service = Service(clock, _events(9, ties=3))
    ts, event_id = service.events[4]
    checkpoint = Checkpoint("r0", cursor="stale", endpoint="feed", position=Position(ts, event_id))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        service.install(mock)
        page = _source(clock, can_issue=False).reader().fetch(RangeCursor(checkpoint))
    fields = decode_cursor(service.log[0][1]["cursor"])
    assert fields is not None and (fields["ts"], fields["id"]) == (ts, event_id)
    assert [r["id"] for r in page.records] == [i for _, i in service.events[5:8]]


def test_a_range_top_without_position_includes_every_event_at_hi() -> None:
    clock = FakeClock()
    service = Service(clock, _events(9, ties=3))
    hi = service.events[3][0]  # events 3, 4, 5 share this instant
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        service.install(mock)
        reader = _source(clock, can_issue=False).reader()
        page = reader.fetch(RangeCursor(Checkpoint("r1", hi_ms=hi)))
    fields = decode_cursor(service.log[0][1]["cursor"])
    assert fields is not None and (fields["ts"], fields["id"]) == (hi + 1, "")
    assert [r["id"] for r in page.records] == [i for _, i in service.events[3:6]]


def test_the_feed_reads_a_time_range_with_inclusive_bounds() -> None:
    clock = FakeClock()
    service = Service(clock, _events(20, ties=2))
    lo, hi = service.events[15][0], service.events[4][0]
    expected = [i for ts, i in service.events if lo <= ts <= hi]
    source = _source(clock, token="tok-supplied")
    service.valid_tokens.add("tok-supplied")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        service.install(mock)
        ids = _read_all(source, Checkpoint("r1", hi_ms=hi, lo_ms=lo))
    assert ids == expected
    feed = [p for kind, p in service.log if kind == "feed"]
    assert feed[0] == {"limit": "3", "since": str(lo), "until": str(hi)}
    assert all(p.get("cursor") for p in feed[1:])
    assert set(service.endpoints()) == {"feed"}


def test_an_issued_token_is_renewed_before_it_expires() -> None:
    clock = FakeClock()
    service = Service(clock, _events(30), token_ttl_s=300)
    source = _source(clock)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        service.install(mock)
        ids = _read_all(source, Checkpoint("r0"), between=lambda _: clock.advance(30))
    assert len(ids) == 30
    assert service.endpoints().count("stream-access") == 2  # 270 s of reading: one renewal
    assert "feed-403" not in service.endpoints()


def test_refused_token_without_key_falls_back_to_standard_from_the_same_position() -> None:
    clock = FakeClock()
    service = Service(clock, _events(12, ties=2))
    service.valid_tokens.add("good")
    source = _source(clock, can_issue=False, token="good")
    reader = source.reader()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        service.install(mock)
        first = reader.fetch(RangeCursor(Checkpoint("r0")))
        checkpoint = _advance(Checkpoint("r0"), first)
        service.valid_tokens.clear()  # the supplied token expires
        second = reader.fetch(RangeCursor(checkpoint))
    assert first.endpoint == "feed" and second.endpoint == "standard"
    both = [*first.records, *second.records]
    assert [r["id"] for r in both] == [i for _, i in service.events[:6]]
    fields = decode_cursor(service.log[-1][1]["cursor"])
    assert fields is not None and fields["id"] == first.records[-1]["id"]
    assert source.tokens.current() is None


def test_a_refused_token_is_replaced_and_the_feed_goes_on() -> None:
    clock = FakeClock()
    service = Service(clock, _events(6))
    source = _source(clock, token="copied-long-ago")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        service.install(mock)
        page = source.reader().fetch(RangeCursor(Checkpoint("r0")))
    assert page.endpoint == "feed"
    assert service.endpoints() == ["feed-403", "stream-access", "feed"]
    assert source.tokens.origin() == "issued"


def test_dashboard_required_means_standard_until_a_token_can_be_had() -> None:
    clock = FakeClock()
    service = Service(clock, _events(30, ties=3), issue_tokens=False)
    source = _source(clock)
    reader = source.reader()
    checkpoint = Checkpoint("r0")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        service.install(mock)
        page = reader.fetch(RangeCursor(checkpoint))
        assert page.endpoint == "standard"
        assert source.tokens.last_problem is not None
        assert "DASHBOARD_REQUIRED" in source.tokens.last_problem
        checkpoint = _advance(checkpoint, page)
        page = reader.fetch(RangeCursor(checkpoint))  # within the minute: no new token request
        assert page.endpoint == "standard"
        assert service.endpoints().count("stream-access") == 1  # refused: not retried
        checkpoint = _advance(checkpoint, page)
        service.issue_tokens = True
        clock.advance(61)
        page = reader.fetch(RangeCursor(checkpoint))
    assert page.endpoint == "feed"
    # Back on the feed without a cursor: bounded by the last stored instant, inclusive.
    assert service.log[-1][1] == {"limit": "3", "until": str(checkpoint.position.ts_ms)}  # type: ignore[union-attr]
    assert checkpoint.position is not None
    assert checkpoint.position.event_id in [r["id"] for r in page.records]


def test_an_expired_feed_cursor_restarts_from_the_last_instant() -> None:
    clock = FakeClock()
    service = Service(clock, _events(12, ties=2))
    service.valid_tokens.add("t")
    source = _source(clock, can_issue=False, token="t")
    reader = source.reader()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        service.install(mock)
        first = reader.fetch(RangeCursor(Checkpoint("r0")))
        checkpoint = _advance(Checkpoint("r0", hi_ms=service.events[0][0]), first)
        clock.advance(200)
        page = reader.fetch(RangeCursor(checkpoint))
    assert page.endpoint == "feed"
    retried = service.log[-1][1]
    assert "cursor" not in retried and checkpoint.position is not None
    assert retried["until"] == str(checkpoint.position.ts_ms)
    assert len(clock.sleeps) == 0


def test_a_service_that_returns_the_same_cursor_cannot_loop_forever() -> None:
    clock = FakeClock()
    service = Service(clock, _events(12))
    source = _source(clock, can_issue=False)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        service.install(mock)
        first = source.reader().fetch(RangeCursor(Checkpoint("r0")))
        service.stuck_cursor = "on"
        with pytest.raises(FatalSourceError) as caught:
            _read_all(source, _advance(Checkpoint("r0"), first))
    assert "not advancing" in str(caught.value)
    # The first page, then STALL_LIMIT pages that gave the cursor back.
    assert service.endpoints().count("standard") == 1 + STALL_LIMIT


def test_no_secret_reaches_errors_or_reprs() -> None:
    clock = FakeClock()
    service = Service(clock, _events(3))
    service.faults = [(400, {"code": "BAD", "message": f"key {KEY} is odd"})]
    source = _source(clock, token="tok-SECRET-xyz")
    texts = [repr(source.config), repr(source.tokens.current())]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        service.install(mock)
        with pytest.raises(SourceError) as caught:
            source.reader().fetch(RangeCursor(Checkpoint("r0")))
    texts += [str(caught.value), repr(caught.value)]
    for text in texts:
        assert KEY not in text and "tok-SECRET-xyz" not in text


def test_open_source_from_settings() -> None:
    settings = Settings(api_url=BASE, api_key=KEY, token=None, page_size=77, workers=3)
    config = SourceConfig.from_settings(settings)
    assert (config.base_url, config.page_size, config.readers) == (BASE, 77, 3)
    assert KEY not in repr(config)
    clock = FakeClock()
    source = open_source(config, clock, threading.Event())
    try:
        service = Service(clock, _events(5), issue_tokens=False)
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            service.install(mock)
            mock.get(BASE, json={"name": "DataSync Analytics API", "version": "v1"})
            assert source.info()["version"] == "v1"
            probe = source.probe()
        assert probe.total == 5 and [r["id"] for r in probe.records] == ["evt-00000"]
        stats = source.health()
        assert stats.retries == 0 and stats.token_origin is None
    finally:
        source.close()


def test_fetch_total_reports_meta_total() -> None:
    clock = FakeClock()
    service = Service(clock, _events(8), issue_tokens=False)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        service.install(mock)
        mock.add(responses.GET, BASE, json={"name": "DataSync Analytics API", "version": "v1"})
        assert fetch_total(SourceConfig(BASE, KEY), clock) == 8
    assert service.log[-1] == ("standard", {"limit": "1"})


def _source_with_gated_token(clock: FakeClock) -> tuple[Source, threading.Event]:
    """A source whose token request is held until the returned event is set."""
    gate = threading.Event()
    config = SourceConfig(BASE, KEY, None, page_size=3, max_attempts=4, readers=2)
    client = ApiClient(BASE, KEY, clock=clock)

    def issue() -> Mapping[str, Any]:
        gate.wait(5)
        return client.request_stream_token()

    return Source(config, client, clock, threading.Event(), tokens=StreamTokens(clock, issue)), gate


def test_the_first_page_need_not_wait_for_a_token_on_its_way() -> None:
    clock = FakeClock()
    service = Service(clock, _events(9))
    source, gate = _source_with_gated_token(clock)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        service.install(mock)
        source.prepare()
        reader = source.reader()
        first = reader.fetch(RangeCursor(Checkpoint("r1")), wait_for_token=False)
        gate.set()
        second = reader.fetch(RangeCursor(_advance(Checkpoint("r1"), first)))
    assert first.endpoint == "standard" and second.endpoint == "feed"
    # The feed goes on from the last stored instant, inclusive: that event comes again.
    ids = list(dict.fromkeys(r["id"] for r in [*first.records, *second.records]))
    assert ids == [i for _, i in service.events[:5]]


def test_a_spent_standard_window_makes_the_first_page_wait_for_the_token_instead() -> None:
    clock = FakeClock()
    service = Service(clock, _events(9))
    service.faults.append(
        (429, {"error": "Too Many Requests", "message": "x", "code": "RATE_LIMIT_EXCEEDED"})
    )
    source, gate = _source_with_gated_token(clock)
    opener = threading.Timer(0.2, gate.set)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        service.install(mock)
        source.prepare()
        opener.start()
        page = source.reader().fetch(RangeCursor(Checkpoint("r1")), wait_for_token=False)
    opener.cancel()
    # One refused try at the standard endpoint, no retry there: the page came from the feed.
    assert page.endpoint == "feed"
    assert [kind for kind, _ in service.log if kind != "stream-access"] == ["standard", "feed"]
    assert [r["id"] for r in page.records] == [i for _, i in service.events[:3]]
