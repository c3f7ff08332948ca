"""The DataSync protocol as the documented service speaks it, for the hostile server.

A `Service` answers every request the way the live service would; a test subclasses it and
overrides the one answer it wants to make hostile (a redirect, an endless page, a poison record,
a delay header). Requests are recorded with their headers, so a test can check what arrived.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .stream import PageOut, Stream, render_page

API_BASE = "/api/v1"
EVENTS_PATH = "/api/v1/events"
FEED_PATH = "/api/v1/events/d4ta/x7k9/feed"
STREAM_ACCESS_PATH = "/internal/dashboard/stream-access"
API_KEY = "hostile-secret-key-5150"
JSON_TYPE = "application/json; charset=utf-8"
BOM = b"\xef\xbb\xbf"


@dataclass
class Request:
    """One request as it arrived; header names in lower case."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    route: str
    number: int  # 1 for the first request to this route, and so on
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None


@dataclass
class Reply:
    """What to send. `trickle_s`: the body goes out one byte per that many seconds."""

    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    trickle_s: float | None = None


def route_of(method: str, path: str) -> str:
    path = path.rstrip("/") or "/"
    if method == "GET" and path == API_BASE:
        return "info"
    if method == "GET" and path == EVENTS_PATH:
        return "events"
    if method == "GET" and path == FEED_PATH:
        return "feed"
    if method == "POST" and path == STREAM_ACCESS_PATH:
        return "stream_access"
    return "other"


class Service:
    """Answers as the documented service does; every method is a seam a test may override."""

    def __init__(
        self,
        stream: Stream,
        *,
        api_key: str | None = API_KEY,
        stream_access: bool = True,
        check_token: bool = True,
        bom: bool = False,
    ) -> None:
        self.stream = stream
        self.api_key = api_key  # None: any key, or none at all, is accepted
        self.stream_access_allowed = stream_access
        self.check_token = check_token
        self.bom = bom
        self.requests: list[Request] = []
        self.errors: list[str] = []
        self._tokens: set[str] = set()
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    # --- bookkeeping (the server calls these) --------------------------------------------

    def record(self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
               body: bytes) -> Request:
        route = route_of(method, path)
        with self._lock:
            self._counts[route] += 1
            req = Request(method, path, query, headers, body, route, self._counts[route])
            self.requests.append(req)
        return req

    def count(self, *routes: str) -> int:
        with self._lock:
            return sum(self._counts[r] for r in routes) if routes else sum(self._counts.values())

    def data_requests(self) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.route in ("events", "feed")]

    # --- answers -------------------------------------------------------------------------

    def answer(self, req: Request) -> Reply:
        if req.route == "other":
            return self.error(404, "ENDPOINT_NOT_FOUND", "The requested endpoint does not exist")
        if self.api_key is not None and req.headers.get("x-api-key") != self.api_key:
            return self.error(401, "UNAUTHORIZED", "Invalid or missing API key")
        handler = {"info": self.info, "events": self.events, "feed": self.feed,
                   "stream_access": self.stream_access}[req.route]
        return handler(req)

    def info(self, req: Request) -> Reply:
        return self.json(200, {"name": "DataSync Analytics API", "version": "v1",
                               "endpoints": {"events": "GET /api/v1/events"}})

    def events(self, req: Request) -> Reply:
        start = self.stream.start_of(req.query.get("cursor"))
        if start is None:
            return self.error(400, "CURSOR_INVALID_FORMAT", "Invalid cursor format")
        return self.page_reply(self.standard_page(req, start, self.limit(req)), feed=False)

    def feed(self, req: Request) -> Reply:
        with self._lock:
            known = req.headers.get("x-stream-token") in self._tokens
        if self.check_token and not known:
            return self.error(403, "INVALID_STREAM_TOKEN", "Invalid or expired stream token")
        start = self.stream.start_of(req.query.get("cursor"))
        if start is None:
            return self.error(400, "CURSOR_INVALID_FORMAT", "Invalid cursor format")
        since, until = self.bound(req, "since"), self.bound(req, "until")
        return self.page_reply(self.feed_page(req, start, self.limit(req), since, until), True)

    def stream_access(self, req: Request) -> Reply:
        if not self.stream_access_allowed:
            return self.error(403, "DASHBOARD_REQUIRED", "This endpoint requires dashboard access")
        token = self.issue_token()
        return self.json(200, {
            "streamAccess": {"endpoint": FEED_PATH, "token": token, "expiresIn": 300,
                             "tokenHeader": "X-Stream-Token"},
            "meta": {"generatedAt": "2026-01-27T19:20:12.369Z", "note": "hostile"},
        })

    # --- the pages (override these to change what is served) ------------------------------

    def standard_page(self, req: Request, start: int, limit: int) -> PageOut:
        return self.stream.page(start, limit)

    def feed_page(self, req: Request, start: int, limit: int, since: int | None,
                  until: int | None) -> PageOut:
        return self.stream.page(start, limit, since, until)

    # --- pieces --------------------------------------------------------------------------

    def issue_token(self) -> str:
        token = secrets.token_hex(32)
        with self._lock:
            self._tokens.add(token)
        return token

    def tokens(self) -> set[str]:
        with self._lock:
            return set(self._tokens)

    @staticmethod
    def limit(req: Request) -> int:
        try:
            return max(1, min(5000, int(req.query.get("limit", "100"))))
        except ValueError:
            return 100

    @staticmethod
    def bound(req: Request, name: str) -> int | None:
        raw = req.query.get(name)
        return int(float(raw)) if raw else None

    def page_reply(self, page: PageOut, feed: bool,
                   headers: Iterable[tuple[str, str]] = ()) -> Reply:
        request_id = str(uuid.uuid4())
        body = render_page(page, feed, request_id, len(self.stream.entries))
        return self.raw_json(200, body, [("X-Request-ID", request_id), *headers])

    def json(self, status: int, obj: Any, headers: Iterable[tuple[str, str]] = ()) -> Reply:
        return self.raw_json(status, json.dumps(obj).encode(), headers)

    def error(self, status: int, code: str, message: str,
              headers: Iterable[tuple[str, str]] = (), **extra: Any) -> Reply:
        reason = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
                  429: "Too Many Requests"}.get(status, "Error")
        return self.json(status, {"error": reason, "message": message, "code": code, **extra},
                         headers)

    def raw_json(self, status: int, body: bytes,
                 headers: Iterable[tuple[str, str]] = ()) -> Reply:
        prefix = BOM if self.bom else b""
        return Reply(status, prefix + body,
                     [("Content-Type", JSON_TYPE), ("X-Powered-By", "Express"), *headers])
