"""Request handling of the simulated service, independent of the socket layer.

Checks run in this order on the data endpoints: injected transport faults (dropped connection,
5xx, not counted), API key (401, not counted), then the standard endpoint's fixed window (every
later response is counted) or the feed's token and hidden throttle, then parameters.
"""

from __future__ import annotations

import math
import random
import re
import threading
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import urlsplit

import orjson

from ..clock import Clock, SystemClock
from .config import MockConfig
from .cursor import CursorFormatError, decode_cursor, encode_cursor
from .faults import strip_optional
from .limits import FixedWindow, TokenBucket, WindowVerdict
from .stream import EventStream, PageSlice
from .tokens import StreamTokens

API_BASE = "/api/v1"
EVENTS_PATH = "/api/v1/events"
FEED_PATH = "/api/v1/events/d4ta/x7k9/feed"
TOKEN_PATH = "/internal/dashboard/stream-access"
TOKEN_HEADER = "X-Stream-Token"
MAX_LIMIT = 5000
DEFAULT_LIMIT = 100
JSON_TYPE = "application/json; charset=utf-8"

_LEADING_INT = re.compile(r"\s*([-+]?\d+)")
_GATEWAY_PAGE = (
    "<html>\r\n<head><title>{0}</title></head>\r\n<body>\r\n<center><h1>{0}</h1></center>\r\n"
    "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


@dataclass(frozen=True)
class Request:
    """An HTTP request reduced to what the service looks at; header names in lower case."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]


@dataclass
class Response:
    """What to send back; `drop` closes the connection without sending anything."""

    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    drop: bool = False


class MockCounters:
    """What the server did, for tests: requests per route, refusals, tokens, faults."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.rate_limited = 0
        self.feed_throttled = 0
        self.tokens_issued = 0
        self.connections = 0
        self.in_flight = 0
        self.max_in_flight = 0

    def count(self, route: str) -> None:
        with self._lock:
            self.requests[route] += 1

    def fault(self, kind: str) -> None:
        with self._lock:
            self.faults[kind] += 1

    def add(self, name: str) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)

    def enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1


def _seconds(value: float) -> int | float:
    """Whole seconds as an int (the live form); fractions kept for sub-second test settings."""
    return int(value) if float(value).is_integer() else round(value, 3)


def _error(status: int, error: str, message: str, code: str, **extra: Any) -> tuple[int, Any]:
    return status, {"error": error, "message": message, "code": code, **extra}


class _Refusal(Exception):
    def __init__(self, status: int, body: Any, headers: list[tuple[str, str]] | None = None):
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or []


def _unauthorized() -> _Refusal:
    return _Refusal(*_error(401, "Unauthorized", "Invalid or missing API key", "UNAUTHORIZED"))


def _bad_request(message: str, code: str) -> _Refusal:
    return _Refusal(*_error(400, "Bad Request", message, code))


class MockApp:
    """The simulated DataSync service: routes, auth, limits, cursors, tokens and faults."""

    def __init__(self, config: MockConfig, clock: Clock | None = None) -> None:
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.stream = EventStream(config)
        self.counters = MockCounters()
        self.stopping = threading.Event()
        self._window = FixedWindow(config.rate_window)
        self._bucket = (
            TokenBucket(config.feed_rate, config.feed_burst) if config.feed_rate > 0 else None
        )
        self._tokens = StreamTokens(config.token_ttl)
        self._rng = random.Random(config.seed)
        self._rng_lock = threading.Lock()

    # --- entry -----------------------------------------------------------------------------

    def handle(self, req: Request) -> Response:
        self.counters.enter()
        try:
            return self._handle(req)
        finally:
            self.counters.leave()

    def _handle(self, req: Request) -> Response:
        self._delay()
        path = req.path.rstrip("/") or "/"
        request_id = str(uuid.uuid4())
        route = self._route(req.method, path)
        self.counters.count(route)
        extra: list[tuple[str, str]] = []
        try:
            if route in ("events", "event", "feed"):
                fault = self._transport_fault()
                if fault is not None:
                    return fault
            status, body, extra = self._dispatch(route, req, path, request_id)
        except _Refusal as refusal:
            status, body, extra = refusal.status, refusal.body, refusal.headers
        response = self._json(status, body, request_id, extra)
        if status == 200 and route in ("events", "event", "feed") and self._chance(
            self.config.p_truncate
        ):
            self.counters.fault("truncate")
            response.body = response.body[: self._randint(1, max(1, len(response.body) - 1))]
        return response

    def _route(self, method: str, path: str) -> str:
        if method == "GET":
            if path == API_BASE:
                return "info"
            if path == EVENTS_PATH:
                return "events"
            if path == FEED_PATH:
                return "feed"
            rest = path[len(EVENTS_PATH) + 1 :]
            if path.startswith(EVENTS_PATH + "/") and rest and "/" not in rest:
                return "event"
        if method == "POST" and path == TOKEN_PATH:
            return "stream_access"
        return "not_found"

    def _dispatch(
        self, route: str, req: Request, path: str, request_id: str
    ) -> tuple[int, Any, list[tuple[str, str]]]:
        if route == "info":
            self._authenticate(req)  # the live service answers 401 here too
            return 200, self._info(), []
        if route == "events":
            return self._events(req, request_id)
        if route == "event":
            return self._event(req, path[len(EVENTS_PATH) + 1 :])
        if route == "feed":
            return self._feed(req, request_id)
        if route == "stream_access":
            return self._stream_access(req)
        status, body = _error(
            404, "Not Found", "The requested endpoint does not exist", "ENDPOINT_NOT_FOUND"
        )
        return status, body, []

    # --- endpoints -------------------------------------------------------------------------

    def _info(self) -> dict[str, Any]:
        return {
            "name": "DataSync Analytics API",
            "version": "v1",
            "endpoints": {
                "events": "GET /api/v1/events?limit=&cursor=",
                "event": "GET /api/v1/events/:id",
            },
        }

    def _events(self, req: Request, request_id: str) -> tuple[int, Any, list[tuple[str, str]]]:
        bucket, limit = self._authenticate(req)
        headers = self._count_in_window(bucket, limit)
        try:
            start = self._cursor_start(req.query.get("cursor"))
            page_size = self._limit(req.query.get("limit"))
        except _Refusal as refusal:
            refusal.headers = headers
            raise
        page = self.stream.page(start, self.stream.size, page_size, epoch_only=False)
        return 200, self._envelope(page, page_size, request_id), headers

    def _event(self, req: Request, event_id: str) -> tuple[int, Any, list[tuple[str, str]]]:
        bucket, limit = self._authenticate(req)
        headers = self._count_in_window(bucket, limit)
        index = self.stream.timeline.index_of(event_id)
        kind = None if index is None else self.stream.kinds.get(index)
        if index is None or kind in ("missing_id", "empty_id"):
            raise _Refusal(
                *_error(404, "Not Found", f"Event {event_id} not found", "EVENT_NOT_FOUND"), headers
            )
        return 200, {"data": self.stream.record(index, epoch_only=False)}, headers

    def _feed(self, req: Request, request_id: str) -> tuple[int, Any, list[tuple[str, str]]]:
        bucket, _ = self._authenticate(req)
        if not self._tokens.valid(req.headers.get(TOKEN_HEADER.lower()), self.clock.monotonic()):
            raise _Refusal(
                *_error(403, "Forbidden", "Invalid or expired stream token", "INVALID_STREAM_TOKEN")
            )
        if self._bucket is not None:
            wait = self._bucket.take(bucket, self.clock.monotonic())
            if wait > 0:
                self.counters.add("feed_throttled")
                seconds = max(1, math.ceil(wait))
                raise _Refusal(
                    *_error(
                        429,
                        "Too Many Requests",
                        f"Rate limit exceeded. Try again in {seconds} seconds.",
                        "RATE_LIMIT_EXCEEDED",
                    ),
                    [("Retry-After", str(seconds))],
                )
        since = self._epoch_param(req.query, "since")
        until = self._epoch_param(req.query, "until")
        start = self._cursor_start(req.query.get("cursor"))
        page_size = self._limit(req.query.get("limit"))
        first, stop = self.stream.bounds(since, until)
        page = self.stream.page(max(start, first), stop, page_size, True, since, until)
        headers: list[tuple[str, str]] = []
        if page.records and self._chance(self.config.p_missing_fields):
            self.counters.fault("missing_fields")
            with self._rng_lock:
                stripped = [
                    strip_optional(r, self._rng) if self._rng.random() < 0.25 else r
                    for r in page.records
                ]
            page = PageSlice(stripped, page.last_index, page.has_more)
            headers.append(("X-Chaos-Applied", "missingFields"))
        return 200, self._envelope(page, page_size, request_id), headers

    def _stream_access(self, req: Request) -> tuple[int, Any, list[tuple[str, str]]]:
        key = req.headers.get("x-api-key")
        if not key or (self.config.api_key is not None and key != self.config.api_key):
            raise _unauthorized()
        if self.config.no_stream_access or not self._looks_like_dashboard(req, key):
            message = "This endpoint requires dashboard access"
            raise _Refusal(*_error(403, "Forbidden", message, "DASHBOARD_REQUIRED"))
        token = self._tokens.issue(self.clock.monotonic())
        self.counters.add("tokens_issued")
        generated = datetime.fromtimestamp(self.clock.wall(), timezone.utc)
        return (
            200,
            {
                "streamAccess": {
                    "endpoint": FEED_PATH,
                    "token": token,
                    "expiresIn": _seconds(self.config.token_ttl),
                    "tokenHeader": TOKEN_HEADER,
                },
                "meta": {
                    "generatedAt": generated.isoformat(timespec="milliseconds").replace(
                        "+00:00", "Z"
                    ),
                    "note": "Stream tokens expire; request a new one when the feed answers 403.",
                },
            },
            [],
        )

    # --- pieces ----------------------------------------------------------------------------

    def _authenticate(self, req: Request) -> tuple[str, int]:
        """The window key and its limit; the query-string key gets half the limit."""
        header = req.headers.get("x-api-key")
        if header:
            key, bucket, limit = header, header, self.config.rate_limit
        else:
            key = req.query.get("api_key", "")
            bucket, limit = "query:" + key, max(1, self.config.rate_limit // 2)
        if not key or (self.config.api_key is not None and key != self.config.api_key):
            raise _unauthorized()
        return bucket, limit

    def _count_in_window(self, bucket: str, limit: int) -> list[tuple[str, str]]:
        verdict: WindowVerdict = self._window.hit(bucket, limit, self.clock.monotonic())
        headers = [
            ("X-RateLimit-Limit", str(verdict.limit)),
            ("X-RateLimit-Remaining", str(verdict.remaining)),
            ("X-RateLimit-Reset", str(verdict.reset_s)),
        ]
        if not verdict.allowed:
            self.counters.add("rate_limited")
            reset = verdict.reset_s
            raise _Refusal(
                *_error(
                    429,
                    "Too Many Requests",
                    f"Rate limit exceeded. Try again in {reset} seconds.",
                    "RATE_LIMIT_EXCEEDED",
                    rateLimit={"limit": limit, "remaining": 0, "reset": reset, "retryAfter": reset},
                ),
                [*headers, ("Retry-After", str(reset))],
            )
        return headers

    def _cursor_start(self, text: str | None) -> int:
        if not text:
            return 0
        try:
            cursor = decode_cursor(text)
        except CursorFormatError:
            raise _bad_request("Invalid cursor format", "CURSOR_INVALID_FORMAT") from None
        now_ms = int(self.clock.wall() * 1000)
        if cursor.exp_ms < now_ms:
            minutes = (now_ms - cursor.exp_ms) // 60_000
            raise _bad_request(f"Cursor expired {minutes} minute(s) ago", "CURSOR_EXPIRED")
        return self.stream.timeline.index_after(cursor.ts_ms, cursor.event_id)

    @staticmethod
    def _limit(raw: str | None) -> int:
        match = _LEADING_INT.match(raw or "")
        if match is None:
            return DEFAULT_LIMIT
        return max(1, min(MAX_LIMIT, int(match.group(1))))

    @staticmethod
    def _epoch_param(query: Mapping[str, str], name: str) -> int | None:
        raw = query.get(name)
        if raw is None or raw == "":
            return None
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise _bad_request(f"'{name}' must be epoch milliseconds", "INVALID_PARAMETER")
        return int(value)

    def _envelope(self, page: PageSlice, limit: int, request_id: str) -> dict[str, Any]:
        next_cursor: str | None = None
        expires_in: int | float | None = None
        if page.has_more and page.last_index is not None:
            timeline = self.stream.timeline
            exp_ms = int(self.clock.wall() * 1000 + self.config.cursor_ttl * 1000)
            next_cursor = encode_cursor(
                timeline.event_id(page.last_index), timeline.ts(page.last_index), exp_ms
            )
            expires_in = _seconds(self.config.cursor_ttl)
        return {
            "data": page.records,
            "pagination": {
                "limit": limit,
                "hasMore": page.has_more,
                "nextCursor": next_cursor,
                "cursorExpiresIn": expires_in,
            },
            "meta": {
                "total": self.stream.reported_total,
                "returned": len(page.records),
                "requestId": request_id,
            },
        }

    def _looks_like_dashboard(self, req: Request, key: str) -> bool:
        host = req.headers.get("host", "").lower()
        if not req.headers.get("user-agent", "").startswith("Mozilla/5.0") or not host:
            return False
        for name in ("origin", "referer"):
            parts = urlsplit(req.headers.get(name, ""))
            if parts.scheme not in ("http", "https") or parts.netloc.lower() != host:
                return False
        cookie = SimpleCookie()
        try:
            cookie.load(req.headers.get("cookie", ""))
        except CookieError:
            return False
        morsel = cookie.get("dashboard_api_key")
        return morsel is not None and morsel.value == key

    # --- faults and transport --------------------------------------------------------------

    def _chance(self, p: float) -> bool:
        if p <= 0:
            return False
        with self._rng_lock:
            return self._rng.random() < p

    def _randint(self, lo: int, hi: int) -> int:
        with self._rng_lock:
            return self._rng.randint(lo, hi)

    def _transport_fault(self) -> Response | None:
        if self._chance(self.config.p_drop):
            self.counters.fault("drop")
            return Response(0, drop=True)
        if not self._chance(self.config.p5xx):
            return None
        with self._rng_lock:
            status = self._rng.choice((500, 502, 503, 504))
        self.counters.fault("5xx")
        if status in (502, 504):
            title = "502 Bad Gateway" if status == 502 else "504 Gateway Time-out"
            return Response(
                status,
                _GATEWAY_PAGE.format(title).encode(),
                [("Content-Type", "text/html")],
            )
        reason, code = (
            ("Internal Server Error", "INTERNAL_ERROR")
            if status == 500
            else ("Service Unavailable", "SERVICE_UNAVAILABLE")
        )
        return self._json(
            *_error(status, reason, "The server could not complete the request", code),
            str(uuid.uuid4()),
            [],
        )

    def _delay(self) -> None:
        base, jitter = self.config.latency_ms, self.config.latency_jitter_ms
        if base <= 0 and jitter <= 0:
            return
        with self._rng_lock:
            extra = self._rng.uniform(0, jitter) if jitter > 0 else 0.0
        self.stopping.wait((base + extra) / 1000)

    @staticmethod
    def _json(
        status: int, body: Any, request_id: str, extra: list[tuple[str, str]]
    ) -> Response:
        headers = [
            ("Content-Type", JSON_TYPE),
            ("X-Powered-By", "Express"),
            ("X-Request-ID", request_id),
            *extra,
        ]
        return Response(status, orjson.dumps(body), headers)
