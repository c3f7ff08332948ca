"""Rows for `COPY ... FROM STDIN (FORMAT binary)`, and the instant as timestamptz text.

Binary rows cost PostgreSQL about a tenth less per row than text rows (in an A/B of the same
million rows): it no longer scans every byte for separators and escapes, and the instant
arrives as the integer it is stored as instead of text to parse. They cost Python less too:
nothing to escape, no timestamp text. PostgreSQL text cannot hold NUL, so transform rejects
records containing it before this point.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from operator import attrgetter
from struct import Struct

from ..models import Batch, Checkpoint, Event, Rejected

# The columns of a COPY into ingested_events, and of staging_events, which has the same shape
# and types so one encoding serves both targets.
COPY_COLUMNS = ("id", "event_type", "timestamp", "data")

_HOUR_US = 3_600_000_000
_EPOCH_DAY = date(1970, 1, 1)
_hour_prefixes: dict[int, str] = {}
_MINUTE_SECOND = tuple(f"{m:02d}:{s:02d}." for m in range(60) for s in range(60))
_BY_ID = attrgetter("id")

# The binary format: a signature, 32-bit flags and header-extension length, then per row a
# 16-bit field count and each field as a 32-bit length (-1 for NULL) and its bytes; a field
# count of -1 ends the data. Integers are big-endian.
_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_TRAILER = b"\xff\xff"
_NULL_FIELD = b"\xff\xff\xff\xff"
_ROW_AND_ID = Struct(">hi")  # field count, id length
_LENGTH = Struct(">i")
# timestamptz travels as microseconds since 2000-01-01 UTC, after its length (8); the data's
# length follows, counting the jsonb version byte that leads it.
_STAMP_AND_DATA = Struct(">iqi")
_PG_EPOCH_US = 946_684_800_000_000
_JSONB_VERSION = b"\x01"


def copy_sql(table: str) -> str:
    """The COPY statement that reads `encode_rows` output into `table`."""
    return f"COPY {table} ({', '.join(COPY_COLUMNS)}) FROM STDIN (FORMAT binary)"


def timestamp_text(ts_us: int) -> str:
    """An epoch-microsecond instant as timestamptz input ("2026-01-27 19:19:13.629000+00").

    Several times faster than datetime arithmetic: a page spans minutes to hours, so each
    hour's "date hour:" text is built once, and the "minute:second." that follows comes from a
    table of all 3,600."""
    hour, rest = divmod(ts_us, _HOUR_US)
    prefix = _hour_prefixes.get(hour)
    if prefix is None:
        if len(_hour_prefixes) > 100_000:
            _hour_prefixes.clear()
        day, hour_of_day = divmod(hour, 24)
        day_text = (_EPOCH_DAY + timedelta(days=day)).isoformat()
        prefix = _hour_prefixes[hour] = f"{day_text} {hour_of_day:02d}:"
    second, micros = divmod(rest, 1_000_000)
    return f"{prefix}{_MINUTE_SECOND[second]}{micros:06d}+00"


def encode_rows(events: Iterable[Event]) -> bytes:
    """The binary COPY data of a batch (columns COPY_COLUMNS), header and trailer included."""
    row_and_id, stamp_and_data = _ROW_AND_ID.pack, _STAMP_AND_DATA.pack
    version, pg_epoch = _JSONB_VERSION, _PG_EPOCH_US
    # A stream has a handful of event types: each one's field is encoded once per page.
    kinds: dict[str | None, bytes] = {None: _NULL_FIELD}
    parts = [_HEADER]
    add = parts.extend
    for event_id, event_type, ts_us, text in events:
        key = event_id.encode()
        data = text.encode()
        kind = kinds.get(event_type)
        if kind is None:
            kind = kinds[event_type] = _field(event_type.encode())  # type: ignore[union-attr]
        add((
            row_and_id(4, len(key)), key, kind,
            stamp_and_data(8, ts_us - pg_epoch, len(data) + 1), version, data,
        ))
    parts.append(_TRAILER)
    return b"".join(parts)


def _field(value: bytes) -> bytes:
    return _LENGTH.pack(len(value)) + value


def make_batch(
    events: list[Event], rejected: list[Rejected], checkpoint: Checkpoint, fetched: int = 0
) -> Batch:
    """A batch with its COPY rows encoded (in the caller's thread, not the writer's).

    The rows go in id order: PostgreSQL then inserts into the primary key's index leaf after
    leaf instead of at random, which saves it a few percent of a page's work."""
    rows = encode_rows(sorted(events, key=_BY_ID))
    return Batch(events, rejected, checkpoint, rows, fetched)
