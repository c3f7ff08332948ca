"""COPY text format: escaping is correct for any text, checked against a reference decoder."""

from __future__ import annotations

import re

import orjson
from hypothesis import given
from hypothesis import strategies as st

from datasync_cli.models import Event
from datasync_cli.sink.copy_format import (
    COPY_COLUMNS,
    encode_rows,
    timestamp_text,
)
from datasync_cli.transform import MAX_TS_US, MIN_TS_US

# Text PostgreSQL can hold: any code point except NUL and the surrogates.
pg_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"))

_SIMPLE = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_ESCAPE = re.compile(r"\\(x[0-9A-Fa-f]{1,2}|[0-7]{1,3}|.)", re.DOTALL)


def decode_field(field: str) -> str | None:
    """PostgreSQL's reading of one text-format field (docs: COPY, File Formats, Text Format)."""
    if field == "\\N":
        return None

    def unescape(match: re.Match[str]) -> str:
        token = match[1]
        if token[0] == "x" and len(token) > 1:
            return chr(int(token[1:], 16))
        if token[0] in "01234567":
            return chr(int(token, 8))
        return _SIMPLE.get(token, token)

    return _ESCAPE.sub(unescape, field)


def decode_rows(payload: bytes) -> list[list[str | None]]:
    text = payload.decode("utf-8")
    assert text.endswith("\n") or not text
    return [[decode_field(f) for f in line.split("\t")] for line in text.split("\n")[:-1]]


def event(id: str, event_type: str | None, ts_us: int, data: str) -> Event:
    return Event(id=id, event_type=event_type, ts_us=ts_us, data=data)


def test_plain_row() -> None:
    payload = encode_rows([event("a", "click", 1769541553629000, '{"id":"a"}')])
    assert payload == b'a\tclick\t2026-01-27 19:19:13.629000+00\t{"id":"a"}\n'
    assert len(COPY_COLUMNS) == 4


def test_null_type_and_negative_timestamp() -> None:
    payload = encode_rows([event("a", None, -5, "{}")])
    assert decode_rows(payload) == [["a", None, "1969-12-31 23:59:59.999995+00", "{}"]]


def test_special_characters_are_escaped() -> None:
    nasty = "back\\slash\ttab\nnewline\rreturn \\N \\. end"
    payload = encode_rows([event(nasty, nasty, 0, "{}")])
    assert payload.count(b"\n") == 1
    assert payload.count(b"\t") == 3
    assert decode_rows(payload) == [[nasty, nasty, "1970-01-01 00:00:00.000000+00", "{}"]]


def test_literal_backslash_n_is_not_null() -> None:
    rows = decode_rows(encode_rows([event("\\N", "\\N", 0, "{}"), event("b", None, 0, "{}")]))
    assert rows[0][:2] == ["\\N", "\\N"] and rows[1][1] is None


def test_json_with_escapes_survives() -> None:
    data = orjson.dumps({"k": 'a\\b "q" \n\t\r \u0001 \U0001f600'}).decode()
    payload = encode_rows([event("x", None, 0, data)])
    rows = decode_rows(payload)
    assert rows[0][3] == data
    assert orjson.loads(rows[0][3] or "") == orjson.loads(data)


def test_empty_batch() -> None:
    assert encode_rows([]) == b""


@given(
    st.lists(st.tuples(pg_text, st.none() | pg_text, st.integers(MIN_TS_US, MAX_TS_US), pg_text))
)
def test_any_text_round_trips(rows: list[tuple[str, str | None, int, str]]) -> None:
    events = [event(i, t, ts, orjson.dumps({"v": d}).decode()) for i, t, ts, d in rows]
    payload = encode_rows(events)
    decoded = decode_rows(payload)
    assert decoded == [[e.id, e.event_type, timestamp_text(e.ts_us), e.data] for e in events]


@given(pg_text)
def test_no_raw_separator_survives_in_a_field(text: str) -> None:
    payload = encode_rows([event(text, text, 0, "{}")]).decode()
    assert payload.count("\t") == 3 and payload.count("\n") == 1 and "\r" not in payload
    assert decode_rows(payload.encode())[0][:2] == [text, text]


@given(st.integers(-62_135_596_800_000_000, 253_402_300_799_999_999))
def test_timestamp_text_is_the_instant(ts_us: int) -> None:
    from datetime import datetime, timedelta, timezone

    expected = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=ts_us)
    parsed = datetime.strptime(timestamp_text(ts_us).replace("+00", "+0000"),
                               "%Y-%m-%d %H:%M:%S.%f%z")
    assert parsed == expected
