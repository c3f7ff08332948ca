"""The synthetic stream without sockets: ordering, ids, lookups and page planning."""

from __future__ import annotations

import random

import orjson
import pytest

from datasync_cli.mockapi import MockConfig, decode_cursor, encode_cursor
from datasync_cli.mockapi.cursor import CursorFormatError
from datasync_cli.mockapi.mix import Perm48
from datasync_cli.mockapi.stream import EventStream
from datasync_cli.mockapi.timeline import SPAN_MS, Timeline


@pytest.fixture(scope="module")
def big() -> Timeline:
    return Timeline(42, 3_000_000)


def test_span_agrees_with_single_lookups(big: Timeline) -> None:
    stamps, ids = big.span(1_234_560, 1_236_560)
    for offset in range(0, 2000, 37):
        i = 1_234_560 + offset
        assert big.ts(i) == stamps[offset] and big.event_id(i) == ids[offset]


def test_order_is_timestamp_desc_then_id_asc(big: Timeline) -> None:
    stamps, ids = big.span(2_000_000, 2_010_000)
    pairs = list(zip(stamps, ids, strict=True))
    assert pairs == sorted(pairs, key=lambda p: (-p[0], p[1]))
    assert len(set(ids)) == len(ids)


def test_dataset_covers_thirty_days(big: Timeline) -> None:
    newest, oldest = big.ts(0), big.ts(big.size - 1)
    assert SPAN_MS * 0.99 < newest - oldest <= SPAN_MS
    assert newest <= 1_769_558_400_000  # not after 2026-01-28


def test_positions_map_back_to_indices(big: Timeline) -> None:
    rng = random.Random(1)
    for i in [0, 1, big.size - 1, *(rng.randrange(big.size) for _ in range(300))]:
        event_id, ts = big.event_id(i), big.ts(i)
        assert big.index_of(event_id) == i
        assert big.index_after(ts, event_id) == i + 1
        assert big.first_at_or_before(ts) <= i
    assert big.index_of("56a349b5-7243-4e0c-9fd8-f2c1eb2a5d35") is None
    assert big.index_of("not an id") is None


def test_permutation_is_invertible() -> None:
    perm = Perm48(12345)
    rng = random.Random(2)
    for x in (rng.getrandbits(48) for _ in range(2000)):
        assert perm.inverse(perm.forward(x)) == x


def test_seeds_give_different_streams() -> None:
    assert Timeline(1, 1000).span(0, 50) != Timeline(2, 1000).span(0, 50)
    assert Timeline(1, 1000).span(0, 50) == Timeline(1, 1000).span(0, 50)


@pytest.mark.parametrize("limit", [1, 2, 3, 50, 997])
def test_pages_tile_the_stream(limit: int) -> None:
    stream = EventStream(MockConfig(events=3_000, duplicates=30, bad_records=20))
    start = 0
    served: list[str | None] = []
    while True:
        page = stream.page(start, stream.size, limit, epoch_only=True)
        assert len(page.records) <= limit
        served.extend(r.get("id") for r in page.records)
        if not page.has_more:
            break
        assert page.last_index is not None and page.last_index >= start
        start = page.last_index + 1
    without_id = sum(kind in ("missing_id", "empty_id") for kind in stream.kinds.values())
    assert len({i for i in served if i}) == 3_000 - without_id
    copies = len(served) - 3_000
    # Pages too small for a copy and its host serve the host alone.
    assert copies == 30 if limit >= 3 else 0 <= copies <= 30


def test_cursor_codec() -> None:
    text = encode_cursor("abc", 1_769_541_612_369, 1_769_541_700_000)
    assert decode_cursor(text).ts_ms == 1_769_541_612_369
    assert decode_cursor(text.rstrip("=").replace("+", "-").replace("/", "_")).event_id == "abc"
    for broken in ("", "====", "a", "ab c", "eyJpZCI6MX0"):
        with pytest.raises(CursorFormatError):
            decode_cursor(broken)


@pytest.mark.parametrize("epoch_only", [True, False])
def test_pages_served_as_text_are_the_dict_pages_byte_for_byte(epoch_only: bool) -> None:
    """The serving path builds events as JSON text; faulted events and copies stay dicts."""
    stream = EventStream(MockConfig(events=30_000, duplicates=300, bad_records=200))
    start = 0
    while start is not None:
        as_dicts = stream.page(start, stream.size, 997, epoch_only)
        as_text = stream.page(start, stream.size, 997, epoch_only, as_json=True)
        assert orjson.dumps(as_text.records) == orjson.dumps(as_dicts.records), start
        assert (as_text.last_index, as_text.has_more) == (as_dicts.last_index, as_dicts.has_more)
        start = as_dicts.last_index + 1 if as_dicts.has_more and as_dicts.last_index else None
