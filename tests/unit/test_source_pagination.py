"""RangeCursor: the next request from a checkpoint, the next checkpoint from a page, and the
guards against a service that stops advancing."""

from __future__ import annotations

import pytest

from datasync_cli.models import Checkpoint, Event, Page, Position
from datasync_cli.source import RangeCursor
from datasync_cli.source.errors import SourceNotAdvancingError
from datasync_cli.source.pagination import STALL_LIMIT

NEWEST = 1_769_500_000_000


def ev(n: int, ts_ms: int | None = None) -> Event:
    ts = NEWEST - n * 1000 if ts_ms is None else ts_ms
    return Event(f"e{n:04d}", "click", ts * 1000, "{}")


def page(events: list[Event], cursor: str | None, more: bool = True) -> Page:
    records = [{"id": e.id} for e in events]
    return Page(records, cursor, more, None, "feed")


def test_advance_moves_the_checkpoint_to_the_last_event_and_cursor() -> None:
    cursor = RangeCursor(Checkpoint("r0"))
    cursor.feed_request()
    step = cursor.advance(page([ev(0), ev(1), ev(2)], "c1"), [ev(0), ev(1), ev(2)], 1)
    cp = step.checkpoint
    assert cp.position == Position(NEWEST - 2000, "e0002")
    assert (cp.cursor, cp.endpoint, cp.events, cp.rejected, cp.finished) == ("c1", "feed", 3, 1,
                                                                            False)
    assert cursor.feed_request().cursor == "c1"


def test_a_cursor_is_only_used_on_the_endpoint_that_issued_it() -> None:
    cp = Checkpoint("r0", cursor="feed-cursor", endpoint="feed", position=Position(NEWEST, "e0"))
    cursor = RangeCursor(cp)
    assert cursor.feed_request().cursor == "feed-cursor"
    forged = cursor.standard_cursor(NEWEST)
    assert forged is not None and forged != "feed-cursor"


def test_events_outside_the_range_are_handed_back_not_dropped() -> None:
    lo, hi = NEWEST - 5000, NEWEST - 1000
    cursor = RangeCursor(Checkpoint("r1", hi_ms=hi, lo_ms=lo))
    events = [ev(0), ev(1), ev(3), ev(9)]  # e0 above hi; e9 below lo
    step = cursor.advance(page(events, "c"), events, 0)
    assert [e.id for e in step.inside] == ["e0001", "e0003"]
    assert [e.id for e in step.outside] == ["e0000", "e0009"]
    assert step.checkpoint.events == 2


def test_the_range_ends_when_the_page_goes_below_its_floor() -> None:
    lo = NEWEST - 3500
    cursor = RangeCursor(Checkpoint("r1", lo_ms=lo))
    events = [ev(2), ev(3), ev(4), ev(5)]
    step = cursor.advance(page(events, "c"), events, 0)
    assert step.finished
    # The position is the last event inside the range, not the one below it.
    assert step.checkpoint.position == Position(NEWEST - 3000, "e0003")


def test_one_out_of_order_old_record_does_not_end_a_range() -> None:
    lo = NEWEST - 100_000
    cursor = RangeCursor(Checkpoint("r0", lo_ms=lo))
    events = [ev(0), ev(1), ev(7, ts_ms=5)]  # a 1970 record at the end of the page
    step = cursor.advance(page(events, "c"), events, 0)
    assert not step.finished
    assert step.checkpoint.position == Position(NEWEST - 1000, "e0001")
    events = [ev(2), ev(7, ts_ms=5), ev(3)]  # and in the middle
    assert not cursor.advance(page(events, "d"), events, 0).finished


def test_the_top_range_records_the_median_of_its_first_page_as_the_head() -> None:
    cursor = RangeCursor(Checkpoint("r000"))
    events = [ev(0, ts_ms=253_402_300_000_000), ev(1), ev(2), ev(3), ev(4)]  # year 9999 first
    step = cursor.advance(page(events, "c"), events, 0)
    assert step.checkpoint.head_ms == NEWEST - 2000
    later = [ev(5), ev(6)]
    assert cursor.advance(page(later, "d"), later, 0).checkpoint.head_ms == NEWEST - 2000
    bounded = RangeCursor(Checkpoint("r001", hi_ms=NEWEST))
    assert bounded.advance(page(later, "e"), later, 0).checkpoint.head_ms is None


def _stall(cursor: RangeCursor, pages: list[tuple[list[Event], str | None]]) -> None:
    for events, next_cursor in pages:
        cursor.feed_request()
        cursor.advance(page(events, next_cursor), events, 0)


def test_empty_pages_that_say_has_more_end_in_a_clear_error() -> None:
    cursor = RangeCursor(Checkpoint("r0"))
    with pytest.raises(SourceNotAdvancingError) as caught:
        _stall(cursor, [([], f"fresh-{n}") for n in range(STALL_LIMIT)])
    assert "empty pages" in caught.value.message


def test_a_cursor_cycle_ends_in_a_clear_error() -> None:
    cursor = RangeCursor(Checkpoint("r0"))
    first, second = [ev(0), ev(1)], [ev(2), ev(3)]
    with pytest.raises(SourceNotAdvancingError) as caught:
        _stall(cursor, [(first, "A"), (second, "B")] * (STALL_LIMIT + 1))
    assert "cursor already used" in caught.value.message


def test_positions_moving_backwards_end_in_a_clear_error() -> None:
    cursor = RangeCursor(Checkpoint("r0"))
    _stall(cursor, [([ev(10), ev(11)], "c0")])
    with pytest.raises(SourceNotAdvancingError) as caught:
        _stall(cursor, [([ev(0), ev(1)], f"c{n}") for n in range(1, STALL_LIMIT + 1)])
    assert "did not move past" in caught.value.message


def test_progress_in_between_resets_the_count() -> None:
    cursor = RangeCursor(Checkpoint("r0"))
    for n in range(10):
        _stall(cursor, [([], f"empty-{n}")] * (STALL_LIMIT - 1))
        _stall(cursor, [([ev(2 * n), ev(2 * n + 1)], f"real-{n}")])


def test_a_last_page_may_be_empty() -> None:
    cursor = RangeCursor(Checkpoint("r0"))
    for _ in range(STALL_LIMIT + 1):
        assert cursor.advance(page([], None, more=False), [], 0).finished
