"""Ordinary pages are read as text: each record stored as it arrived, judged exactly as the
general path would judge it, and every unusual page handed to the general path."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datasync_cli.models import Event, RecordTexts
from datasync_cli.source import decode_body, parse_page
from datasync_cli.source.textpage import decode_page_body
from datasync_cli.transform import transform_page

ORDINARY = (
    b'{"data":[{"id":"a","type":"click","timestamp":1769541612369,"p":{"x":0.25,"n":null}},'
    b'{"id":"b","timestamp":"2026-01-27T19:20:13.629Z","deep":[[{"k":[1,2]}]]},'
    b'{"id":7,"type":null,"timestamp":"1769541612369","s":"caf\xc3\xa9 \\" \\\\ \\n"}],'
    b'"pagination":{"hasMore":true,"nextCursor":"c1"},"meta":{"total":3,"requestId":"r"}}'
)


def test_an_ordinary_page_keeps_each_record_as_its_text() -> None:
    value = decode_page_body(ORDINARY)
    records = value["data"]
    assert isinstance(records, RecordTexts) and len(records) == 3
    assert records.texts[0] == (
        '{"id":"a","type":"click","timestamp":1769541612369,"p":{"x":0.25,"n":null}}'
    )
    assert records.ids == ["a", "b", 7] and records.types == ["click", None, None]
    assert [orjson.loads(t) for t in records.texts] == decode_body(ORDINARY)["data"]
    page = parse_page(value, "feed")
    assert page.next_cursor == "c1" and page.has_more and page.total == 3
    assert page.request_id == "r"


def test_indexing_and_iterating_give_whole_records() -> None:
    records = decode_page_body(ORDINARY)["data"]
    assert records[1] == decode_body(ORDINARY)["data"][1]
    assert list(records) == decode_body(ORDINARY)["data"]
    assert records[:2] == decode_body(ORDINARY)["data"][:2]


def test_layout_whitespace_never_reaches_a_record_text() -> None:
    pretty = orjson.dumps(orjson.loads(ORDINARY), option=orjson.OPT_INDENT_2)
    pretty = pretty.replace(b"  ", b"\t")
    records = decode_page_body(b"\xef\xbb\xbf" + pretty + b"\r\n")["data"]
    assert isinstance(records, RecordTexts)
    assert not any(ch in text for text in records.texts for ch in "\t\n\r")
    assert [orjson.loads(t) for t in records.texts] == decode_body(ORDINARY)["data"]


@pytest.mark.parametrize(
    "record",
    [
        '{"id":"a","timestamp":1,"s":"nul \\u0000"}',  # JSONB refuses NUL
        '{"id":"a","timestamp":1,"s":"half \\ud800"}',  # a lone surrogate
        '{"id":"a","timestamp":1,"s":"pair \\uD83D\\uDE00"}',  # any surrogate escape
        '{"id":null,"timestamp":1}',
        '{"timestamp":1}',
        '{"id":"a"}',
        '{"id":true,"timestamp":1}',
        '{"id":"a","timestamp":1.5}',
        '{"id":"a","timestamp":1,"type":{"k":1}}',
        '"not an object"',
        '{"id":"a","timestamp":1,"s":"\t raw tab inside a string"}',
        '{"id":"a","timestamp":1,"deep":' + "[" * 5000 + "]" * 5000 + "}",
    ],
)
def test_an_unusual_page_is_read_the_general_way(record: str) -> None:
    content = ('{"data":[{"id":"ok","timestamp":1},' + record + "]}").encode()
    assert decode_page_body(content) == decode_body(content)


def test_text_that_is_not_utf8_is_read_the_general_way() -> None:
    content = b'{"data":[{"id":"a","timestamp":1,"s":"\xff\xfe"}]}'
    assert decode_page_body(content) == decode_body(content)


@pytest.mark.parametrize("content", [b"", b"{", b'{"data":', b"[]", b'{"data":{}}', b"null"])
def test_what_is_no_page_is_left_to_the_general_path(content: bytes) -> None:
    assert decode_page_body(content) == decode_body(content)


def _results(records: Any) -> tuple[list[tuple[str, str | None, int, Any]], list[Any]]:
    events, rejected = transform_page(records, finite=True)
    return [(e.id, e.event_type, e.ts_us, orjson.loads(e.data)) for e in events], rejected


_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8),
)
_STAMPS = st.one_of(
    st.integers(-(10**20), 10**20),
    # Where the reading of a number changes unit (seconds, milliseconds, microseconds), on
    # either side: the text path reads milliseconds inline.
    st.sampled_from([10**11 - 1, 10**11, 10**14 - 1, 10**14, -(10**11), -(10**14) + 1,
                     1_769_541_612_369]),
    st.sampled_from(["2026-01-27T19:19:13.629Z", "2026-01-27T19:19:60.000Z", "9999-12-31T23:59",
                     "", "  ", "March 5", "1769541612", "2026-02-30T00:00:00.000Z"]),
    st.text(max_size=30),
)
_RECORDS = st.fixed_dictionaries(
    {"id": st.one_of(st.text(max_size=12), st.integers(-5, 10**30))},
    optional={
        "timestamp": _STAMPS,
        "type": st.one_of(st.none(), st.text(max_size=6)),
        "p": st.dictionaries(st.text(max_size=4), _SCALARS, max_size=3),
    },
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_RECORDS, max_size=6), st.booleans(), st.sampled_from([None, 1]))
def test_a_text_page_is_judged_as_the_general_path_judges_it(
    records: list[Any], ascii_only: bool, indent: int | None
) -> None:
    content = json.dumps({"data": records}, ensure_ascii=ascii_only, indent=indent).encode()
    general = _results(decode_body(content)["data"])
    assert _results(decode_page_body(content)["data"]) == general


def test_a_rejected_text_record_is_rejected_as_the_general_path_rejects_it() -> None:
    content = b'{"data":[{"id":"  ","timestamp":1,"x":1.5e3},{"id":"b","timestamp":"soon"}]}'
    records = decode_page_body(content)["data"]
    assert isinstance(records, RecordTexts)
    events, rejected = transform_page(records)
    assert events == [] and rejected == transform_page(decode_body(content)["data"])[1]
    assert [r.reason for r in rejected] == ["empty id", "unparseable timestamp: 'soon'"]


def test_an_accepted_text_record_is_stored_as_it_arrived() -> None:
    content = b'{"data":[{"id":"a","timestamp":1, "n":1.10, "big":123456789012345678901234}]}'
    (event,), _ = transform_page(decode_page_body(content)["data"])
    assert event == Event("a", None, 1_000_000, '{"id":"a","timestamp":1, "n":1.10, '
                                                '"big":123456789012345678901234}')
