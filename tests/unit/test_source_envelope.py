"""Reading the service's JSON: the fast path, exact numbers, poison records, envelope faults."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import orjson
import pytest

from datasync_cli.models import UnreadableRecord
from datasync_cli.source import decode_body, parse_page


def body(records: str, **envelope: Any) -> bytes:
    tail = orjson.dumps(envelope).decode()[1:-1] if envelope else ""
    return ('{"data":[' + records + "]" + ("," + tail if tail else "") + "}").encode()


def test_ordinary_pages_take_the_fast_path_and_keep_their_values() -> None:
    value = decode_body(body('{"id":"a","timestamp":1769541612369,"p":{"x":0.25}}'))
    assert value["data"][0] == {"id": "a", "timestamp": 1769541612369, "p": {"x": 0.25}}
    assert isinstance(value["data"][0]["p"]["x"], float)


@pytest.mark.parametrize(
    "number",
    ["1e-400", "1e400", "0.1000000000000000055511151231257827",
     "123456789012345678901234567890.5", "12345678901234567890", "-1E+999"],
)
def test_numbers_a_double_cannot_carry_are_read_exactly(number: str) -> None:
    value = decode_body(body('{"id":"a","x":' + number + "}"))
    assert Decimal(str(value["data"][0]["x"])) == Decimal(number)


def test_a_5000_digit_integer_does_not_fail_its_page() -> None:
    digits = "7" * 5000
    value = decode_body(body('{"id":"a","x":' + digits + '},{"id":"b"}'))
    assert len(value["data"]) == 2
    assert str(value["data"][0]["x"]) == digits


def test_a_byte_order_mark_is_ignored() -> None:
    assert decode_body(b"\xef\xbb\xbf" + body('{"id":"a"}'))["data"] == [{"id": "a"}]


@pytest.mark.parametrize("depth", [2000, 10_000])
def test_a_record_nested_thousands_deep_costs_only_itself(depth: int) -> None:
    deep = '{"id":"deep","n":' + "[" * depth + "]" * depth + "}"
    records = '{"id":"a","s":"text with ] and } and , inside"},' + deep + ',{"id":"b"}'
    value = decode_body(body(records, pagination={"hasMore": True, "nextCursor": "c"}))
    a, poison, b = value["data"]
    assert a["id"] == "a" and b == {"id": "b"}
    assert isinstance(poison, UnreadableRecord) and "deep" in poison.reason
    assert poison.raw.startswith('{"id":"deep"')
    page = parse_page(value, "feed")
    assert page.next_cursor == "c" and page.has_more


def test_a_truncated_body_is_not_json() -> None:
    assert decode_body(body('{"id":"a"},{"id":"b"}')[:-9]) is None


@pytest.mark.parametrize("cursor", ["a\x00b", "\ud800x", "x" * 10_000, "tab\there", 5, ""])
def test_an_unstorable_cursor_is_dropped_but_has_more_kept(cursor: Any) -> None:
    page = parse_page({"data": [], "pagination": {"nextCursor": cursor, "hasMore": True}}, "feed")
    assert page.next_cursor is None and page.has_more


@pytest.mark.parametrize(
    "total", [math.nan, math.inf, Decimal("1e400"), 1e20, -5, 2.5, True, "3000000", None]
)
def test_a_total_that_is_no_count_is_unknown(total: Any) -> None:
    assert parse_page({"data": [], "meta": {"total": total}}, "feed").total is None


def test_a_plausible_total_is_kept() -> None:
    assert parse_page({"data": [], "meta": {"total": 3_000_000.0}}, "feed").total == 3_000_000


def test_ordinary_pages_are_not_sent_down_the_exact_path() -> None:
    """UUIDs such as "...3e-1234..." look like exponents to a careless check; the exact path
    is several times slower, so a page of ordinary events must never take it."""
    from datasync_cli.mockapi import MockConfig
    from datasync_cli.mockapi.stream import EventStream
    from datasync_cli.source.envelope import _needs_exact

    stream = EventStream(MockConfig(events=20_000))
    for start, epoch_only in ((0, False), (5000, True), (10_000, False)):
        page = stream.page(start, stream.size, 5000, epoch_only)
        assert not _needs_exact(orjson.dumps({"data": page.records}))
