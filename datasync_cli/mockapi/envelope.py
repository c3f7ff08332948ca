"""Paging parameters in, the response envelope out: cursors, limits, bounds, pagination, meta."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from ..clock import Clock
from .config import MockConfig
from .cursor import CursorFormatError, decode_cursor, encode_cursor
from .messages import bad_request, seconds
from .stream import EventStream, PageSlice

MAX_LIMIT = 5000
DEFAULT_LIMIT = 100

_LEADING_INT = re.compile(r"\s*([-+]?\d+)")


class Envelope:
    """Reads a request's paging parameters and wraps a page the way the service does."""

    def __init__(self, config: MockConfig, clock: Clock, stream: EventStream) -> None:
        self.config = config
        self.clock = clock
        self.stream = stream

    def cursor_start(self, text: str | None) -> int:
        """The stream index a cursor continues at (0 without one); 400 when it is expired or
        cannot be decoded."""
        if not text:
            return 0
        try:
            cursor = decode_cursor(text)
        except CursorFormatError:
            raise bad_request("Invalid cursor format", "CURSOR_INVALID_FORMAT") from None
        now_ms = int(self.clock.wall() * 1000)
        if cursor.exp_ms < now_ms:
            minutes = (now_ms - cursor.exp_ms) // 60_000
            raise bad_request(f"Cursor expired {minutes} minute(s) ago", "CURSOR_EXPIRED")
        return self.stream.timeline.index_after(cursor.ts_ms, cursor.event_id)

    @staticmethod
    def limit(raw: str | None) -> int:
        """`limit` as JavaScript's parseInt reads it, clamped to [1, MAX_LIMIT]."""
        match = _LEADING_INT.match(raw or "")
        if match is None:
            return DEFAULT_LIMIT
        return max(1, min(MAX_LIMIT, int(match.group(1))))

    @staticmethod
    def epoch_param(query: Mapping[str, str], name: str) -> int | None:
        """`since` or `until` in epoch ms; 400 INVALID_PARAMETER when not a number."""
        raw = query.get(name)
        if raw is None or raw == "":
            return None
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise bad_request(f"'{name}' must be epoch milliseconds", "INVALID_PARAMETER")
        return int(value)

    def wrap(self, page: PageSlice, limit: int, request_id: str) -> dict[str, Any]:
        """`data`, `pagination` (with a fresh cursor after the page's last event) and `meta`."""
        next_cursor: str | None = None
        expires_in: int | float | None = None
        if page.has_more and page.last_index is not None:
            timeline = self.stream.timeline
            exp_ms = int(self.clock.wall() * 1000 + self.config.cursor_ttl * 1000)
            next_cursor = encode_cursor(
                timeline.event_id(page.last_index), timeline.ts(page.last_index), exp_ms
            )
            expires_in = seconds(self.config.cursor_ttl)
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
