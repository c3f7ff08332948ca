"""ApiClient against `responses`: envelope quirks, error mapping, Retry-After, secrets."""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import responses

from datasync_cli.clock import FakeClock
from datasync_cli.errors import FatalSourceError, RetriableSourceError, SourceError
from datasync_cli.source import ApiClient, RateLimitedError, StreamToken
from datasync_cli.source.errors import (
    AuthError,
    CursorExpiredError,
    StreamAccessDeniedError,
    TokenRejectedError,
)

BASE = "http://api.test/api/v1"
KEY = "key-SECRET-4242"
TOKEN_VALUE = "ab" * 32
FEED = "http://api.test/api/v1/events/d4ta/x7k9/feed"


def _params(request: requests.PreparedRequest) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(request.url or "").query))


def _client(clock: FakeClock | None = None) -> ApiClient:
    return ApiClient(BASE, KEY, clock=clock or FakeClock())


def _token() -> StreamToken:
    return StreamToken(TOKEN_VALUE, None, "supplied")


def _event(n: int, ts: int | str) -> dict[str, Any]:
    return {"id": f"e{n}", "type": "click", "timestamp": ts}


def _page(data: list[Any], cursor: str | None, has_more: bool | None = None) -> dict[str, Any]:
    pagination: dict[str, Any] = {"limit": 5000, "nextCursor": cursor, "cursorExpiresIn": 117}
    if has_more is not None:
        pagination["hasMore"] = has_more
    return {"data": data, "pagination": pagination, "meta": {"total": 7, "requestId": "r-1"}}


def _error(status: int, code: str, message: str = "no", **headers: str) -> dict[str, Any]:
    return {
        "status": status,
        "json": {"error": "x", "message": message, "code": code},
        "headers": headers,
    }


@responses.activate
def test_key_is_a_header_never_a_query_parameter() -> None:
    responses.get(f"{BASE}/events", json=_page([], None, False))
    _client().events_page(None, 5000)
    sent = responses.calls[0].request
    assert sent.headers["X-API-Key"] == KEY
    assert KEY not in (sent.url or "")
    assert sent.headers["User-Agent"].startswith("datasync/")
    assert "limit=5000" in (sent.url or "")


@responses.activate
def test_pagination_follows_next_cursor_through_several_pages() -> None:
    pages = {
        None: _page([_event(1, 30), _event(2, 20)], "c1", True),
        "c1": _page([_event(3, "1970-01-01T00:00:00.010Z")], "c2", True),
        "c2": _page([_event(4, 5)], None, False),
    }

    def serve(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        cursor = _params(request).get("cursor")
        return 200, {}, json.dumps(pages[cursor])

    responses.add_callback(responses.GET, f"{BASE}/events", callback=serve)
    client, cursor, ids = _client(), None, []
    while True:
        page = client.events_page(cursor, 2)
        ids += [r["id"] for r in page.records]
        if not page.has_more:
            break
        cursor = page.next_cursor
    assert ids == ["e1", "e2", "e3", "e4"]
    assert page.endpoint == "standard" and page.total == 7 and page.request_id == "r-1"


@pytest.mark.parametrize(
    ("body", "cursor", "has_more", "total"),
    [
        # Documented place.
        ({"data": [1], "pagination": {"nextCursor": "n", "hasMore": True}}, "n", True, None),
        # nextCursor at the top level, hasMore missing: inferred from the cursor.
        ({"data": [1], "nextCursor": "n"}, "n", True, None),
        ({"data": [1], "pagination": {"nextCursor": None}}, None, False, None),
        # hasMore as a string, total at meta.
        ({"data": [], "pagination": {"hasMore": "false"}, "meta": {"total": 3}}, None, False, 3),
        # Empty cursor string means none.
        ({"data": [], "pagination": {"nextCursor": "", "hasMore": False}}, None, False, None),
    ],
)
@responses.activate
def test_envelope_quirks(
    body: dict[str, Any], cursor: str | None, has_more: bool, total: int | None
) -> None:
    responses.get(f"{BASE}/events", json=body)
    page = _client().events_page(None, 10)
    assert (page.next_cursor, page.has_more, page.total) == (cursor, has_more, total)


@pytest.mark.parametrize(
    "body",
    [b'{"data": [{"id": "e1"}, {"id"', b"[]", b'{"items": []}', b"", b'{"data": {}}'],
)
@responses.activate
def test_a_200_without_a_data_list_is_retriable(body: bytes) -> None:
    responses.get(f"{BASE}/events", body=body, status=200)
    with pytest.raises(RetriableSourceError) as caught:
        _client().events_page(None, 10)
    assert not isinstance(caught.value, RateLimitedError)


@responses.activate
def test_a_gzip_page_is_read_and_only_encodings_we_undo_are_asked_for() -> None:
    page = json.dumps(_page([_event(1, 1769541612369)], None, has_more=False)).encode()
    responses.get(f"{BASE}/events", body=gzip.compress(page),
                  headers={"Content-Encoding": "gzip"})
    assert [r["id"] for r in _client().events_page(None, 10).records] == ["e1"]
    assert responses.calls[0].request.headers["Accept-Encoding"] == "gzip, deflate"


@responses.activate
def test_a_body_that_inflates_past_the_cap_is_refused() -> None:
    bomb = gzip.compress(b'{"data":["' + b"A" * (3 << 20) + b'"]}', 9)
    responses.get(f"{BASE}/events", body=bomb, headers={"Content-Encoding": "gzip"})
    client = ApiClient(BASE, KEY, clock=FakeClock(), max_body_bytes=1 << 20)
    with pytest.raises(FatalSourceError, match="larger than 1 MB after decompression"):
        client.events_page(None, 10)


@responses.activate
def test_an_encoding_never_asked_for_is_refused_and_a_damaged_one_retried() -> None:
    responses.get(f"{BASE}/events", body=b"...", headers={"Content-Encoding": "br"})
    with pytest.raises(FatalSourceError, match="encoded as 'br'"):
        _client().events_page(None, 10)
    responses.replace(responses.GET, f"{BASE}/events", body=b"not gzip at all",
                      headers={"Content-Encoding": "gzip"})
    with pytest.raises(RetriableSourceError, match="damaged"):
        _client().events_page(None, 10)


@responses.activate
def test_lone_surrogates_reach_the_caller() -> None:
    responses.get(
        f"{BASE}/events",
        body=b'{"data": [{"id": "e1", "name": "bad \\ud800 here"}], "pagination": {}}',
    )
    page = _client().events_page(None, 10)
    assert page.records[0]["name"] == "bad \ud800 here"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (_error(401, "UNAUTHORIZED"), AuthError),
        (_error(401, "WHATEVER"), AuthError),
        (_error(400, "CURSOR_EXPIRED", "Cursor expired 3 minute(s) ago"), CursorExpiredError),
        (_error(400, "CURSOR_INVALID_FORMAT"), CursorExpiredError),
        (_error(400, "BAD_LIMIT"), FatalSourceError),
        (_error(403, "FORBIDDEN"), FatalSourceError),
        (_error(404, "ENDPOINT_NOT_FOUND"), FatalSourceError),
        (_error(429, "RATE_LIMIT_EXCEEDED", **{"Retry-After": "46"}), RateLimitedError),
        (_error(500, "INTERNAL"), RetriableSourceError),
        (_error(502, "BAD_GATEWAY"), RetriableSourceError),
        (_error(503, "UNAVAILABLE"), RetriableSourceError),
        (_error(504, "GATEWAY_TIMEOUT"), RetriableSourceError),
    ],
)
@responses.activate
def test_error_mapping_on_the_standard_endpoint(
    spec: dict[str, Any], expected: type[SourceError]
) -> None:
    responses.get(f"{BASE}/events", **spec)
    with pytest.raises(expected) as caught:
        _client().events_page("c", 10)
    assert type(caught.value) is expected
    assert str(spec["status"]) in str(caught.value)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (_error(403, "INVALID_STREAM_TOKEN"), TokenRejectedError),
        (_error(403, "DASHBOARD_REQUIRED"), StreamAccessDeniedError),
        (_error(404, "ENDPOINT_NOT_FOUND"), StreamAccessDeniedError),
        (_error(429, "TOO_MANY", **{"Retry-After": "2"}), RateLimitedError),
        (_error(400, "CURSOR_EXPIRED"), CursorExpiredError),
    ],
)
@responses.activate
def test_error_mapping_on_the_feed(spec: dict[str, Any], expected: type[SourceError]) -> None:
    responses.get(FEED, **spec)
    with pytest.raises(expected):
        _client().feed_page(_token(), "c", 1, 2, 10)


@pytest.mark.parametrize(
    "exc",
    [
        requests.ConnectionError("reset by peer"),
        requests.Timeout("read timed out"),
        requests.exceptions.ChunkedEncodingError("incomplete read"),
    ],
)
@responses.activate
def test_transport_failures_are_retriable(exc: Exception) -> None:
    responses.get(f"{BASE}/events", body=exc)
    with pytest.raises(RetriableSourceError):
        _client().events_page(None, 10)


@responses.activate
def test_retry_after_in_seconds_date_body_and_reset() -> None:
    clock = FakeClock()
    client = _client(clock)
    when = datetime.fromtimestamp(clock.wall() + 30, tz=timezone.utc)
    cases = [
        ({"Retry-After": "46"}, {}, 46.0),
        ({"Retry-After": "1.5"}, {}, 1.5),
        ({"Retry-After": format_datetime(when, usegmt=True)}, {}, 30.0),
        ({}, {"rateLimit": {"retryAfter": 12}}, 12.0),
        ({"X-RateLimit-Reset": "9"}, {}, 9.0),
        ({"X-RateLimit-Reset": str(int(clock.wall()) + 20)}, {}, 20.0),  # an epoch, liberally
    ]
    for headers, body, seconds in cases:
        responses.upsert(responses.GET, f"{BASE}/events", status=429, headers=headers, json=body)
        with pytest.raises(RateLimitedError) as caught:
            client.events_page(None, 10)
        assert caught.value.retry_after == pytest.approx(seconds, abs=1.0)


@responses.activate
def test_feed_sends_token_header_and_bounds() -> None:
    responses.get(FEED, json=_page([_event(1, 10)], "f1", True))
    page = _client().feed_page(_token(), "c0", 100, 200, 5000)
    sent = responses.calls[0].request
    assert sent.headers["X-Stream-Token"] == TOKEN_VALUE
    assert _params(sent) == {"limit": "5000", "cursor": "c0", "since": "100", "until": "200"}
    assert page.endpoint == "feed" and page.next_cursor == "f1"


@responses.activate
def test_feed_uses_the_endpoint_and_header_the_token_names_on_our_host_only() -> None:
    token = StreamToken(TOKEN_VALUE, None, "issued", "http://evil.test/x/feed", "X-Other")
    responses.get("http://api.test/x/feed", json=_page([], None, False))
    _client().feed_page(token, None, None, None, 10)
    sent = responses.calls[0].request
    assert sent.url == "http://api.test/x/feed?limit=10"
    assert sent.headers["X-Other"] == TOKEN_VALUE


@responses.activate
def test_stream_access_request_looks_like_the_dashboard() -> None:
    body = {"streamAccess": {"token": TOKEN_VALUE, "expiresIn": 300}}
    responses.post("http://api.test/internal/dashboard/stream-access", json=body)
    assert _client().request_stream_token() == body
    sent = responses.calls[0].request
    assert sent.headers["User-Agent"].startswith("Mozilla/5.0")
    assert sent.headers["Origin"] == "http://api.test"
    assert sent.headers["Referer"].startswith("http://api.test")
    assert sent.headers["Cookie"] == f"dashboard_api_key={KEY}"
    assert sent.headers["X-API-Key"] == KEY
    assert sent.body == b"{}"


@responses.activate
def test_stream_access_denied() -> None:
    responses.post(
        "http://api.test/internal/dashboard/stream-access",
        **_error(403, "DASHBOARD_REQUIRED", "This endpoint requires dashboard access"),
    )
    with pytest.raises(StreamAccessDeniedError):
        _client().request_stream_token()


@responses.activate
def test_info_errors_name_the_fix() -> None:
    client = _client()
    responses.get(BASE, **_error(401, "UNAUTHORIZED"))
    with pytest.raises(AuthError) as auth:
        client.info()
    assert "TARGET_API_KEY" in str(auth.value)

    responses.upsert(responses.GET, BASE, **_error(404, "ENDPOINT_NOT_FOUND"))
    with pytest.raises(FatalSourceError) as missing:
        client.info()
    assert BASE in str(missing.value) and "API_BASE_URL" in str(missing.value)

    responses.upsert(responses.GET, BASE, body=requests.ConnectionError("refused"))
    with pytest.raises(FatalSourceError) as refused:
        client.info()
    assert not isinstance(refused.value, RetriableSourceError)
    assert BASE in str(refused.value) and "--api-url" in str(refused.value)

    responses.upsert(responses.GET, BASE, json={"name": "DataSync Analytics API"})
    assert client.info()["name"] == "DataSync Analytics API"


@responses.activate
def test_no_secret_in_any_error_text() -> None:
    echo = f"bad key {KEY} and token {TOKEN_VALUE}"
    client = _client()
    seen: list[str] = []
    for status, code in [(401, "X"), (400, "Y"), (403, "INVALID_STREAM_TOKEN"), (500, "Z")]:
        responses.upsert(responses.GET, FEED, **_error(status, code, echo))
        with pytest.raises(SourceError) as caught:
            client.feed_page(_token(), None, None, None, 10)
        seen.append(str(caught.value))
        seen.append(repr(caught.value))
    responses.upsert(responses.GET, FEED, body=requests.ConnectionError(echo))
    with pytest.raises(SourceError) as dropped:
        client.feed_page(_token(), None, None, None, 10)
    seen.append(str(dropped.value))
    for text in seen:
        assert KEY not in text and TOKEN_VALUE not in text
    assert TOKEN_VALUE not in repr(_token())
