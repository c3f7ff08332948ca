"""A small DataSync-like stream for the hostile server: newest first, cursors as the service
makes them, timestamps mixed on the standard endpoint and epoch ms on the feed.

Entries are a plain list the test composes and may change between runs (new events at the top,
an out-of-order record, a poison record given as exact JSON text that Python could not even
write). Paging never assumes the list is sorted: the server's own cursors name an index, and a
cursor built by the client is placed by its (ts, id) the way the service places it.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import orjson

NEWEST_MS = 1_769_541_612_369  # 2026-01-27T19:20:12.369Z, the live dataset's newest event
TYPES = ("page_view", "click", "api_call", "form_submit", "scroll", "purchase", "error")


def iso(ts_ms: int) -> str:
    moment = datetime.fromtimestamp(ts_ms / 1000, timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Entry:
    """One served record. `record` is rendered per endpoint (its timestamp spelled as that
    endpoint does); `raw`, when set, is the exact JSON text served by both endpoints."""

    id: str
    ts_ms: int
    record: dict[str, Any] | None = None
    raw: str | None = None
    iso_on_standard: bool = True

    def text(self, feed: bool) -> str:
        if self.raw is not None:
            return self.raw
        assert self.record is not None
        record = dict(self.record)
        if "timestamp" not in record:
            record["timestamp"] = (
                iso(self.ts_ms) if self.iso_on_standard and not feed else self.ts_ms
            )
        return orjson.dumps(record).decode()

    def served(self, feed: bool) -> Any:
        """The record as a client decodes it (for comparisons); raw text is parsed by json."""
        return json.loads(self.text(feed))


def make_events(n: int, newest_ms: int = NEWEST_MS, seed: int = 1, step_ms: int = 997,
                prefix: str = "") -> list[Entry]:
    """`n` valid events, newest first, about one in six sharing the instant of the one before
    it; two in three spell their timestamp in ISO on the standard endpoint."""
    rng = random.Random(seed)
    entries: list[Entry] = []
    ts = newest_ms
    for i in range(n):
        if i and rng.random() > 1 / 6:
            ts -= rng.randint(1, 2 * step_ms)
        event_id = prefix + str(uuid.UUID(int=rng.getrandbits(128), version=4))
        session = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        record = {
            "id": event_id,
            "sessionId": session,
            "userId": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "type": TYPES[i % len(TYPES)],
            "name": f"event_{i:06d}",
            "properties": {"page": f"/p/{i % 17}"},
            "session": {"id": session, "deviceType": "desktop", "browser": "Firefox"},
        }
        entries.append(Entry(event_id, ts, record, iso_on_standard=i % 3 != 0))
    # Ties are ordered by id, as the service orders them.
    entries.sort(key=lambda e: (-e.ts_ms, e.id))
    return entries


def record_entry(event_id: str, ts_ms: int, **fields: Any) -> Entry:
    """A hand-made record; `timestamp` in `fields` is served as given on both endpoints."""
    record = {"id": event_id, "type": "click", "name": "event_hand", **fields}
    return Entry(event_id, ts_ms, record)


def raw_entry(event_id: str, ts_ms: int, text: str) -> Entry:
    """A record served as exactly this JSON text (on both endpoints)."""
    return Entry(event_id, ts_ms, raw=text)


# --- cursors -------------------------------------------------------------------------------

def encode_cursor(event_id: str, ts_ms: int, index: int | None = None,
                  exp_ms: int | None = None) -> str:
    """The service's layout (standard base64 of compact JSON), plus the index it names."""
    payload: dict[str, Any] = {"id": event_id, "ts": ts_ms, "v": 2,
                               "exp": exp_ms or int(time.time() * 1000) + 117_000}
    if index is not None:
        payload["i"] = index
    return base64.b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()


def decode_cursor(text: str) -> dict[str, Any] | None:
    cleaned = text.strip().replace("-", "+").replace("_", "/")
    cleaned += "=" * (-len(cleaned) % 4)
    try:
        value = json.loads(base64.b64decode(cleaned, validate=True))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(value, dict) or not isinstance(value.get("ts"), int):
        return None
    return value


@dataclass
class PageOut:
    """One page before rendering; `total` is any JSON text for meta.total (None: the count)."""

    entries: list[Entry]
    has_more: bool
    next_cursor: str | None
    limit: int
    total: str | None = None
    extra_pagination: dict[str, Any] = field(default_factory=dict)


class Stream:
    """The entries and how the service pages through them."""

    def __init__(self, entries: list[Entry]) -> None:
        self.entries = entries
        self.total: str | None = None  # meta.total as JSON text; None: the number of entries

    def ids(self) -> set[str]:
        return {e.id for e in self.entries}

    def start_of(self, cursor: str | None) -> int | None:
        """The index a cursor continues at; None when it cannot be decoded."""
        if not cursor:
            return 0
        fields = decode_cursor(cursor)
        if fields is None:
            return None
        ts, event_id, index = fields.get("ts"), fields.get("id"), fields.get("i")
        if (isinstance(index, int) and 0 <= index < len(self.entries)
                and self.entries[index].id == event_id and self.entries[index].ts_ms == ts):
            return index + 1
        exact = [i for i, e in enumerate(self.entries) if e.id == event_id and e.ts_ms == ts]
        if exact:
            return exact[-1] + 1
        event_id = event_id if isinstance(event_id, str) else ""
        for i, e in enumerate(self.entries):
            if e.ts_ms < ts or (e.ts_ms == ts and e.id > event_id):
                return i
        return len(self.entries)

    def page(self, start: int, limit: int, since: int | None = None,
             until: int | None = None) -> PageOut:
        """Up to `limit` entries from `start` whose instants lie in [since, until]."""
        def inside(e: Entry) -> bool:
            return (since is None or e.ts_ms >= since) and (until is None or e.ts_ms <= until)

        taken: list[tuple[int, Entry]] = []
        i = start
        while i < len(self.entries) and len(taken) < limit:
            if inside(self.entries[i]):
                taken.append((i, self.entries[i]))
            i += 1
        more = any(inside(e) for e in self.entries[i:])
        cursor = None
        if more and taken:
            index, last = taken[-1]
            cursor = encode_cursor(last.id, last.ts_ms, index)
        return PageOut([e for _, e in taken], more and bool(taken), cursor, limit, self.total)


def render_page(page: PageOut, feed: bool, request_id: str, total_default: int) -> bytes:
    """The envelope as text, so records and meta.total may be any JSON text at all."""
    data = ",".join(e.text(feed) for e in page.entries)
    pagination = {
        "limit": page.limit,
        "hasMore": page.has_more,
        "nextCursor": page.next_cursor,
        "cursorExpiresIn": 117 if page.next_cursor else None,
        **page.extra_pagination,
    }
    total = page.total if page.total is not None else str(total_default)
    meta = f'{{"total":{total},"returned":{len(page.entries)},"requestId":"{request_id}"}}'
    # json escapes what orjson refuses (a lone surrogate in a cursor is a test case).
    paging = json.dumps(pagination, separators=(",", ":"))
    text = f'{{"data":[{data}],"pagination":{paging},"meta":{meta}}}'
    return text.encode("utf-8", "surrogatepass")
