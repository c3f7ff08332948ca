"""COPY binary format: every row reads back as its fields, checked against a reference decoder
written from PostgreSQL's documentation (COPY, File Formats, Binary Format)."""

from __future__ import annotations

import struct

import orjson
from hypothesis import given
from hypothesis import strategies as st

from datasync_cli.models import Event
from datasync_cli.sink.copy_format import COPY_COLUMNS, copy_sql, encode_rows, timestamp_text
from datasync_cli.transform import MAX_TS_US, MIN_TS_US

# Text PostgreSQL can hold: any code point except NUL and the surrogates.
pg_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"))

SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01T00:00:00Z


def decode_rows(payload: bytes) -> list[tuple[str, str | None, int, str]]:
    """Rows of binary COPY data as (id, type, epoch microseconds, JSON text)."""
    assert payload[:11] == SIGNATURE
    flags, extension = struct.unpack_from(">ii", payload, 11)
    assert flags == 0 and extension == 0
    at = 19
    rows = []
    while True:
        (fields,) = struct.unpack_from(">h", payload, at)
        at += 2
        if fields == -1:
            assert at == len(payload), "bytes after the trailer"
            return rows
        assert fields == len(COPY_COLUMNS)
        values: list[bytes | None] = []
        for _ in range(fields):
            (size,) = struct.unpack_from(">i", payload, at)
            at += 4
            values.append(None if size == -1 else payload[at : at + size])
            at += max(size, 0)
        event_id, kind, stamp, data = values
        assert event_id is not None and stamp is not None and data is not None
        assert len(stamp) == 8 and data[:1] == b"\x01"  # jsonb's version byte
        rows.append((
            event_id.decode(),
            None if kind is None else kind.decode(),
            struct.unpack(">q", stamp)[0] + PG_EPOCH_US,
            data[1:].decode(),
        ))


def event(id: str, event_type: str | None, ts_us: int, data: str) -> Event:
    return Event(id=id, event_type=event_type, ts_us=ts_us, data=data)


def test_plain_row() -> None:
    payload = encode_rows([event("a", "click", 1769541553629000, '{"id":"a"}')])
    assert decode_rows(payload) == [("a", "click", 1769541553629000, '{"id":"a"}')]
    assert payload.endswith(b"\xff\xff")


def test_null_type_and_negative_timestamp() -> None:
    assert decode_rows(encode_rows([event("a", None, -5, "{}")])) == [("a", None, -5, "{}")]


def test_separators_and_backslashes_need_no_escaping() -> None:
    nasty = "back\\slash\ttab\nnewline\rreturn \\N \\. end \u00e9 \U0001f600"
    data = orjson.dumps({"k": nasty}).decode()
    assert decode_rows(encode_rows([event(nasty, nasty, 0, data)])) == [(nasty, nasty, 0, data)]


def test_empty_batch_is_header_and_trailer() -> None:
    assert decode_rows(encode_rows([])) == []


def test_the_statement_reads_binary_into_the_columns() -> None:
    assert copy_sql("staging_events") == (
        "COPY staging_events (id, event_type, timestamp, data) FROM STDIN (FORMAT binary)"
    )


@given(
    st.lists(st.tuples(pg_text, st.none() | pg_text, st.integers(MIN_TS_US, MAX_TS_US), pg_text))
)
def test_any_text_round_trips(rows: list[tuple[str, str | None, int, str]]) -> None:
    events = [event(i, t, ts, orjson.dumps({"v": d}).decode()) for i, t, ts, d in rows]
    assert decode_rows(encode_rows(events)) == [tuple(e) for e in events]


@given(st.integers(-62_135_596_800_000_000, 253_402_300_799_999_999))
def test_timestamp_text_is_the_instant(ts_us: int) -> None:
    from datetime import datetime, timedelta, timezone

    expected = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=ts_us)
    parsed = datetime.strptime(timestamp_text(ts_us).replace("+00", "+0000"),
                               "%Y-%m-%d %H:%M:%S.%f%z")
    assert parsed == expected
