"""Hand-made pages: every kind of bad and awkward record, served by a tiny DataSync-compatible
server of the test's own, read by a real `datasync ingest` process.

Valid records must round-trip (stored `data` equals what was served, as JSON values), every
invalid record must be in rejected_events with its raw text and a reason, duplicates are stored
once, and `verify` must account for all of it.
"""

from __future__ import annotations

import base64
import json
import math
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from . import harness as h

pytestmark = pytest.mark.e2e

NEWEST_MS = 1_769_541_612_000  # 2026-01-27T19:20:12Z
HUGE = "0123456789abcdef" * (1024 * 1024 // 16)  # a 1 MiB string
# Stand-ins replaced in the serialized body, for content json.dumps cannot produce as such.
LONE_SURROGATE = "@@lone-surrogate@@"
INVALID_UTF8 = "@@invalid-utf8@@"


@dataclass
class Entry:
    """One record as served and what the ingest must make of it."""

    record: Any
    valid: bool
    instant_ms: int | None = None  # the instant a valid record's timestamp denotes
    reason_has: str = ""  # a word the rejection reason must contain
    copy_of: Entry | None = None


@dataclass
class Feed:
    """The whole stream as pages; answers the standard endpoint, refuses stream access."""

    pages: list[list[Entry]] = field(default_factory=list)
    api_key: str = h.API_KEY

    def entries(self) -> list[Entry]:
        return [e for page in self.pages for e in page]

    def position(self, index: int) -> tuple[int, str]:
        """The (ts, id) a cursor carries for the index-th served record: strictly decreasing
        through the stream, whatever the records' own timestamps (copies sit out of order)."""
        return NEWEST_MS - index, f"p{index:05d}"

    def originals(self) -> list[Entry]:
        return [e for e in self.entries() if e.copy_of is None]

    def total(self) -> int:
        return len(self.originals())

    def page_after(self, cursor: str | None) -> tuple[list[Entry], str | None]:
        """The rest of the page holding the entry after the cursor's position."""
        if cursor is None:
            start = 0
        else:
            pos = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
            count = len(self.entries())
            # Newest first; among equal timestamps, ids ascending (the service's order).
            start = next(
                (i for i in range(count)
                 if (-self.position(i)[0], self.position(i)[1]) > (-pos["ts"], pos["id"])),
                count,
            )
        seen = 0
        for number, page in enumerate(self.pages):
            if start < seen + len(page):
                last = number == len(self.pages) - 1
                return page[start - seen:], None if last else self._cursor(seen + len(page) - 1)
            seen += len(page)
        return [], None

    def _cursor(self, index: int) -> str:
        ts, key = self.position(index)
        body = {"id": key, "ts": ts, "v": 2, "exp": NEWEST_MS * 2}
        return base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")


def _iso(ms: int, hours: int = 0) -> str:
    """ISO 8601 with milliseconds: `Z` for UTC, else the given offset."""
    moment = datetime.fromtimestamp(ms / 1000, tz=timezone(timedelta(hours=hours)))
    text = moment.isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z") if hours == 0 else text


def _body(feed: Feed, entries: list[Entry], cursor: str | None) -> bytes:
    envelope = {
        "data": [e.record for e in entries],
        "pagination": {
            "limit": 5000,
            "hasMore": cursor is not None,
            "nextCursor": cursor,
            "cursorExpiresIn": 117 if cursor else None,
        },
        "meta": {"total": feed.total(), "returned": len(entries), "requestId": str(uuid.uuid4())},
    }
    text = json.dumps(envelope, ensure_ascii=False)
    text = text.replace(LONE_SURROGATE, "\\ud800")
    raw = text.encode("utf-8")
    return raw.replace(INVALID_UTF8.encode(), b"\xff\xfe")


def _served(entry: Entry) -> Any:
    """What a liberal JSON reader makes of the entry as it went over the wire."""
    body = _body(Feed([[entry]]), [entry], None)
    return json.loads(body.decode("utf-8", errors="surrogateescape"))["data"][0]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    feed: Feed

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Powered-By", "Express")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, code: str, message: str) -> None:
        body = {"error": "Error", "message": message, "code": code}
        self._send(status, json.dumps(body).encode())

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._error(403, "DASHBOARD_REQUIRED", "This endpoint requires dashboard access")

    def do_GET(self) -> None:
        if self.headers.get("X-API-Key") != self.feed.api_key:
            self._error(401, "UNAUTHORIZED", "Invalid or missing API key")
            return
        parts = urlsplit(self.path)
        if parts.path.rstrip("/") == "/api/v1":
            info = {"name": "DataSync Analytics API", "version": "v1", "endpoints": {}}
            self._send(200, json.dumps(info).encode())
        elif parts.path == "/api/v1/events":
            cursor = parse_qs(parts.query).get("cursor", [None])[0]
            entries, next_cursor = self.feed.page_after(cursor)
            limits = {"X-RateLimit-Limit": "1000", "X-RateLimit-Remaining": "999",
                      "X-RateLimit-Reset": "60"}
            self._send(200, _body(self.feed, entries, next_cursor), limits)
        else:
            self._error(404, "ENDPOINT_NOT_FOUND", "The requested endpoint does not exist")


@contextmanager
def serving(feed: Feed) -> Iterator[str]:
    """Serve `feed` on a free port; yields the API base URL."""
    handler = type("Handler", (_Handler,), {"feed": feed})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api/v1"
    finally:
        server.shutdown()
        server.server_close()


def _hand_made_feed() -> Feed:
    """Pages of valid, awkward, invalid and repeated records, newest first."""
    entries: list[Entry] = []

    def at(n: int) -> int:
        return NEWEST_MS - n * 1000

    def valid(record: dict[str, Any], instant_ms: int | None = None) -> Entry:
        entry = Entry(record, True, instant_ms if instant_ms is not None else record["timestamp"])
        entries.append(entry)
        return entry

    def bad(record: Any, reason_has: str) -> Entry:
        entry = Entry(record, False, reason_has=reason_has)
        entries.append(entry)
        return entry

    def base(n: int, **fields: Any) -> dict[str, Any]:
        record: dict[str, Any] = {
            "id": str(uuid.UUID(int=0xDA7A_0000 + n)),
            "sessionId": str(uuid.UUID(int=0x5E55_0000 + n)),
            "userId": str(uuid.UUID(int=0x0005_E400 + n)),
            "type": "click",
            "name": f"event_{n}",
            "properties": {"page": "/home"},
            "timestamp": at(n),
            "session": {"id": str(uuid.UUID(int=0x5E55_0000 + n)), "deviceType": "tablet",
                        "browser": "Edge"},
        }
        record.update(fields)
        return {k: v for k, v in record.items() if v is not _DROP}

    # Page 1: ordinary events, timestamp spellings, a duplicate inside the page.
    plain = valid(base(0))
    valid(base(1, timestamp=_iso(at(1))), at(1))
    valid(base(2, timestamp=_iso(at(2), hours=2)), at(2))
    valid(base(3, timestamp=str(at(3))), at(3))
    valid(base(4, timestamp=at(4) // 1000), instant_ms=at(4) // 1000 * 1000)
    in_page = valid(base(5, type="purchase"))
    page1 = [*entries, _copy(in_page)]
    # Page 2: awkward but valid content.
    mark = len(entries)
    valid(base(6, properties={
        "path": "C:\\Users\\demo\\file.txt",
        "text": 'line one\nline two\ttabbed "quoted" \\n literal\r\n',
        "literal_escape": "\\u0000 is six characters here",
        "quote": "'single' and \"double\"",
    }, name='name with "quotes" and \\backslash'))
    valid(base(7, properties={"emoji": "🎉🚀 \U0001f600", "music": "𝄞 clef", "cjk": "漢字"}))
    valid(base(8, properties={"blob": HUGE}))
    valid(base(9, sessionId=_DROP, userId=_DROP, name=_DROP, properties=_DROP, session=_DROP))
    valid(base(10, type=_DROP, session=_DROP))
    valid(base(11, id="id with\ttab, back\\slash, newline\nand ünïcödé 🎉"))
    valid(base(12, properties={"max64": 9223372036854775807, "neg": -7, "f": 1.5,
                               "none": None, "yes": True, "list": [[], {}, [1, [2, [3]]]]}))
    page2 = entries[mark:]
    # Page 3: invalid records, each of its own kind.
    mark = len(entries)
    bad(base(13, id=_DROP), "id")
    bad(base(14, id=""), "id")
    bad(base(15, id="   "), "id")
    bad(base(16, id=None), "id")
    bad(base(17, timestamp="not a date"), "timestamp")
    bad(base(18, timestamp="2026-13-45T99:99:99Z"), "timestamp")
    bad(base(19, timestamp=None), "timestamp")
    bad(base(20, timestamp=_DROP), "timestamp")
    nul = bad(base(21, properties={"note": "before\u0000after"}), "NUL")
    bad(base(22, id="nul\u0000inside"), "NUL")
    bad(base(23, properties={"broken": LONE_SURROGATE}), "surrogate")
    bad(base(24, properties={"ratio": math.nan}), "finite")
    bad("not an object", "object")
    bad(base(25, properties={"bytes": INVALID_UTF8}), "surrogate")
    page3 = entries[mark:]
    # Page 4: more events, and records already served pages before (valid and invalid).
    mark = len(entries)
    valid(base(26))
    page4 = [_copy(plain), *entries[mark:], _copy(nul)]
    valid(base(27))
    page4.append(entries[-1])
    # Page 5: the last, short page.
    valid(base(28, timestamp=_iso(at(28))), at(28))
    page5 = [entries[-1]]
    return Feed([page1, page2, page3, page4, page5])


class _Drop:
    """Marks a field the record lacks."""


_DROP: Any = _Drop()


def _copy(entry: Entry) -> Entry:
    """The same record served again."""
    return Entry(entry.record, entry.valid, entry.instant_ms, entry.reason_has, copy_of=entry)


def _same(a: Any, b: Any) -> bool:
    """JSON equality where NaN equals NaN."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _difference(stored: Any, served: Any, path: str = "$") -> str:
    """Where two JSON values first differ, for a failure message."""
    if isinstance(stored, dict) and isinstance(served, dict):
        for key in sorted(set(stored) | set(served)):
            if key not in stored or key not in served:
                return f"{path}.{key}: only in {'stored' if key in stored else 'served'}"
            if not _same(stored[key], served[key]):
                return _difference(stored[key], served[key], f"{path}.{key}")
    if isinstance(stored, list) and isinstance(served, list) and len(stored) == len(served):
        for i, (a, b) in enumerate(zip(stored, served, strict=True)):
            if not _same(a, b):
                return _difference(a, b, f"{path}[{i}]")
    return f"{path}: stored {json.dumps(stored)[:200]}, served {json.dumps(served)[:200]}"


def _assert_ingested_as_served(feed: Feed, db_url: str, scenario: str) -> None:
    """Ingest `feed` once; then each valid record is stored once as served, each invalid one
    is rejected once with its raw text and a fitting reason, and verify agrees."""
    with serving(feed) as api_url:
        result = h.run(
            h.ingest_args(api_url, h.API_KEY, db_url, "--workers", "1", "--page-size", "5000"),
            timeout=120,
        )
        h.assert_ingest_ok(result, scenario)
        verified = h.run(h.datasync("verify", "--api-url", api_url, "--api-key", h.API_KEY,
                                    "--database-url", db_url))

    originals = feed.originals()
    valid = [e for e in originals if e.valid]
    invalid = [e for e in originals if not e.valid]
    h.assert_exact_set(db_url, {e.record["id"] for e in valid}, scenario)

    stored = {
        row[0]: row[1:]
        for row in h.query(
            db_url,
            "SELECT id, data, event_type, "
            "floor(extract(epoch FROM timestamp) * 1000)::bigint FROM ingested_events",
        )
    }
    for entry in valid:
        event_id = entry.record["id"]
        data, event_type, instant = stored[event_id]
        assert _same(data, _served(entry)), (
            f"{scenario}: {event_id!r} changed on the way in at "
            f"{_difference(data, _served(entry))}"
        )
        assert event_type == entry.record.get("type"), (event_id, event_type)
        assert instant == entry.instant_ms, (
            f"{scenario}: {event_id!r} stored at {instant} ms, served as "
            f"{entry.record['timestamp']!r} = {entry.instant_ms} ms"
        )

    rows = h.query(db_url, "SELECT raw, reason, event_id FROM rejected_events")
    unaccounted = []
    for entry in invalid:
        served = _served(entry)
        hits = [
            (reason, event_id) for raw, reason, event_id in rows if _same(json.loads(raw), served)
        ]
        if len(hits) != 1 or entry.reason_has.lower() not in hits[0][0].lower():
            unaccounted.append(f"{json.dumps(served)[:120]} -> {hits}")
    assert not unaccounted and len(rows) == len(invalid), (
        f"{scenario}: {len(rows)} rejected rows for {len(invalid)} invalid records; "
        f"not accounted for as expected: {unaccounted}"
    )
    assert verified.returncode == 0, f"{scenario}: verify: {verified.stdout}{verified.stderr}"


def test_hand_made_bad_and_awkward_records(db_url: str) -> None:
    _assert_ingested_as_served(
        _hand_made_feed(), db_url, "hand-made pages of bad and awkward records"
    )


def test_integers_beyond_64_bits_are_stored_as_served(db_url: str) -> None:
    """orjson would turn integers beyond 64 bits into floats; the client notices such pages and
    parses them exactly, so `data` holds 123456789012345678901234567890 as the service sent it
    (JSONB can hold the exact number; `data` must be the event as received)."""
    at = NEWEST_MS
    record = {
        "id": "big-numbers-0001",
        "type": "purchase",
        "timestamp": at,
        "properties": {"big": 123456789012345678901234567890, "u64": 18446744073709551616,
                       "negative": -123456789012345678901234567890},
    }
    plain = {"id": "big-numbers-0002", "type": "click", "timestamp": at - 1000}
    feed = Feed([[Entry(record, True, at)], [Entry(plain, True, at - 1000)]])
    _assert_ingested_as_served(feed, db_url, "integers beyond 64 bits")
