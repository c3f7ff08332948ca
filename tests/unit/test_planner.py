"""RangePlanner: ranges for idle readers, splits that leave no gap, work stealing at the end."""

from __future__ import annotations

import math
import threading
from itertools import pairwise

import pytest

from datasync_cli.models import Checkpoint
from datasync_cli.planner import RangePlanner, Split
from datasync_cli.planner.pieces import cut_points, round_trips, trips_per_piece

PAGE = 5000
NEWEST = 1_769_541_600_000
MS_PER_EVENT = 10  # the synthetic stream: one event every 10 ms


def _planner(
    checkpoints: list[Checkpoint], total: int | None, stored_before: int = 0
) -> RangePlanner:
    """A planner that has learnt the source's total from a first page."""
    planner = RangePlanner(checkpoints, PAGE, stored_before=stored_before)
    planner.set_total(total)
    return planner


def _covered(split: Split, parent_hi: int | None) -> list[tuple[int | None, int | None]]:
    """The split range's new range and the new ones, newest first, as (hi, lo)."""
    return [(parent_hi, split.parent_lo_ms)] + [(cp.hi_ms, cp.lo_ms) for cp in split.new_ranges]


def _first_page_read(planner: RangePlanner, reader: str = "r000") -> None:
    planner.observe(reader, NEWEST, NEWEST - PAGE * MS_PER_EVENT, PAGE)


def test_an_idle_reader_gets_a_split_once_the_first_page_shows_the_density() -> None:
    planner = _planner([Checkpoint("r000")], 100 * PAGE)
    persisted: list[Split] = []
    first = planner.next_range(persisted.append)
    assert first is not None and first.range_id == "r000"
    _first_page_read(planner)
    got = planner.next_range(persisted.append, idle_readers=3)
    assert got is not None and len(persisted) == 1
    split = persisted[0]
    assert got == split.new_ranges[0]
    ranges = _covered(split, None)
    assert len(ranges) == 4
    # Adjacent ranges share their boundary instant, and the lowest stays open-ended.
    for (_, lo), (hi, _) in pairwise(ranges):
        assert lo == hi
    assert ranges[-1][1] is None
    # The split range now stops at its new lower bound.
    assert planner.bounds("r000") == (split.parent_lo_ms, None)


def test_splits_land_where_the_events_are() -> None:
    total = 100 * PAGE
    planner = _planner([Checkpoint("r000")], total)
    planner.next_range(lambda s: None)
    _first_page_read(planner)
    persisted: list[Split] = []
    planner.next_range(persisted.append, idle_readers=1)
    oldest = NEWEST - total * MS_PER_EVENT
    cut = persisted[0].parent_lo_ms
    # Two pieces of the remaining span: the cut is near its middle, far above 1970.
    pos = NEWEST - PAGE * MS_PER_EVENT
    middle = (pos + oldest) // 2
    assert abs(cut - middle) < (pos - oldest) * 0.05


def test_no_split_without_enough_left_and_none_when_all_finished() -> None:
    planner = _planner([Checkpoint("r000")], PAGE + 10)
    planner.next_range(lambda s: None)
    _first_page_read(planner)
    done = threading.Event()

    def finish_soon() -> None:
        done.wait(0.2)
        planner.finish("r000")

    threading.Thread(target=finish_soon).start()
    persisted: list[Split] = []
    assert planner.next_range(persisted.append, idle_readers=4, wait_s=0.05) is None
    assert persisted == []
    assert planner.unfinished() == 0


def test_the_last_open_range_is_split_when_many_events_are_still_owed() -> None:
    total = 100 * PAGE
    bounded = Checkpoint("r001", hi_ms=NEWEST, lo_ms=NEWEST - 50 * PAGE * MS_PER_EVENT)
    bottom = Checkpoint("r002", hi_ms=NEWEST - 50 * PAGE * MS_PER_EVENT, lo_ms=None)
    planner = _planner([bounded, bottom], total)
    planner.next_range(lambda s: None)
    planner.next_range(lambda s: None)
    # r001 read all of its 50 pages and finished; r002 read one page of its 50.
    planner.observe("r001", NEWEST, NEWEST - 50 * PAGE * MS_PER_EVENT, 50 * PAGE)
    planner.finish("r001")
    top = NEWEST - 50 * PAGE * MS_PER_EVENT
    planner.observe("r002", top, top - PAGE * MS_PER_EVENT, PAGE)
    persisted: list[Split] = []
    got = planner.next_range(persisted.append, idle_readers=2)
    assert got is not None and persisted and persisted[0].parent_id == "r002"
    assert persisted[0].new_ranges[-1].lo_ms is None


def test_splits_are_persisted_before_a_reader_gets_the_new_range() -> None:
    planner = _planner([Checkpoint("r000")], 100 * PAGE)
    planner.next_range(lambda s: None)
    _first_page_read(planner)
    order: list[str] = []

    def persist(split: Split) -> None:
        order.append("persisted")

    got = planner.next_range(persist, idle_readers=1)
    order.append(f"got {got.range_id if got else None}")
    assert order == ["persisted", "got r001"]


def test_a_resumed_run_does_not_chase_an_estimated_floor_into_an_empty_past() -> None:
    # Earlier runs stored 95 of the 100 pages; the open bottom range owes about 5 more.
    total = 100 * PAGE
    pos = NEWEST - 95 * PAGE * MS_PER_EVENT
    bottom = Checkpoint("r007", hi_ms=pos + 1000, lo_ms=None, events=35 * PAGE)
    planner = _planner([bottom], total, stored_before=95 * PAGE)
    assert planner.next_range(lambda s: None) == bottom
    planner.observe("r007", pos, pos - PAGE * MS_PER_EVENT, PAGE)
    splits: list[Split] = []
    timer = threading.Timer(1.0, planner.close)
    timer.start()
    try:
        for _ in range(200):
            got = planner.next_range(splits.append, idle_readers=3, wait_s=0.01)
            if got is None:
                break
            planner.finish(got.range_id)  # every range split off turns out to be empty
    finally:
        timer.cancel()
    assert len(splits) <= 2, f"{len(splits)} splits chasing the floor"


def test_a_range_nobody_has_read_from_is_not_split() -> None:
    planner = _planner([Checkpoint("r000")], 100 * PAGE)
    planner.next_range(lambda s: None)
    _first_page_read(planner)
    splits: list[Split] = []
    got = planner.next_range(splits.append, idle_readers=1)
    assert got is not None and len(splits) == 1
    # r000 reads on, so the new range now holds more of what is left; but only r000 has
    # shown any events, so a third idle reader splits r000, never the unread new range.
    top = NEWEST - PAGE * MS_PER_EVENT
    planner.observe("r000", top, top - 10 * PAGE * MS_PER_EVENT, 10 * PAGE)
    planner.next_range(splits.append, idle_readers=1, wait_s=0.01)
    assert len(splits) == 2
    assert all(s.parent_id == "r000" for s in splits)


def _events_in(hi: int, lo: int) -> int:
    """Events of the synthetic stream (one every MS_PER_EVENT ms from NEWEST) in [lo, hi]."""
    newest_index = (NEWEST - hi + MS_PER_EVENT - 1) // MS_PER_EVENT
    oldest_index = (NEWEST - lo) // MS_PER_EVENT
    return max(oldest_index - newest_index + 1, 0)


def test_cut_points_give_whole_pages_above_and_the_rest_below() -> None:
    start, floor = NEWEST, NEWEST - 59 * PAGE * MS_PER_EVENT  # 59 pages to share
    cuts = cut_points(start, floor, 1 / MS_PER_EVENT, PAGE, 8)
    bounds = [start, *cuts, floor]
    pages = [_events_in(hi, lo) / PAGE for hi, lo in pairwise(bounds)]
    assert len(pages) == 8
    for share in pages[:-1]:
        # A little short of a whole number of pages: never one event over a page boundary.
        assert math.ceil(share) - 0.03 < share <= math.ceil(share)
    assert sum(math.ceil(p) for p in pages) <= 59 + 1  # the plan's one part-filled page
    assert max(pages) - min(pages) < 1.1  # about the same round trips each


def test_trips_are_shared_evenly_with_the_larger_shares_first() -> None:
    assert trips_per_piece(59, 8) == [8, 8, 8, 7, 7, 7, 7, 7]
    assert trips_per_piece(3, 8) == [1, 1, 1]
    assert round_trips(5000.0, PAGE) == 1 and round_trips(5001.0, PAGE) == 2


def test_the_first_split_shares_the_stream_in_whole_pages() -> None:
    total = 60 * PAGE
    planner = _planner([Checkpoint("r000")], total)
    planner.next_range(lambda s: None)
    _first_page_read(planner)
    splits: list[Split] = []
    planner.next_range(splits.append, idle_readers=7, lanes=8)
    (split,) = splits
    bounds = [NEWEST - PAGE * MS_PER_EVENT, split.parent_lo_ms]
    bounds += [cp.lo_ms for cp in split.new_ranges[:-1] if cp.lo_ms is not None]
    bounds.append(NEWEST - total * MS_PER_EVENT)
    requests = sum(math.ceil(_events_in(hi, lo) / PAGE) for hi, lo in pairwise(bounds))
    assert len(split.new_ranges) == 7
    assert requests <= 59 + 1  # cut anywhere, 8 pieces would pay up to 8 part-filled pages


def test_pages_left_follow_each_ranges_own_density() -> None:
    planner = _planner([Checkpoint("r001", hi_ms=NEWEST, lo_ms=NEWEST - 10_000_000)], 100 * PAGE)
    planner.next_range(lambda s: None)
    # This range is four times denser than the stream's one event per 10 ms.
    planner.observe("r001", NEWEST, NEWEST - PAGE * MS_PER_EVENT // 4, PAGE)
    left = planner.pages_left("r001")
    expected = (10_000_000 - PAGE * MS_PER_EVENT / 4) * 4 / MS_PER_EVENT / PAGE
    assert left == pytest.approx(expected, rel=0.01)


def _reading(planner: RangePlanner, pages: dict[str, int]) -> None:
    """Ranges being read that have each shown one page and hold `pages` more."""
    for range_id, more in pages.items():
        planner.observe(range_id, *_span_of(planner, range_id, more), PAGE)


def _span_of(planner: RangePlanner, range_id: str, more: int) -> tuple[int, int]:
    lo, hi = planner.bounds(range_id)
    assert lo is not None and hi is not None
    return hi, lo + more * PAGE * MS_PER_EVENT


def _ranges(sizes: list[int]) -> list[Checkpoint]:
    """Adjacent bounded ranges of `sizes` pages each, newest first."""
    out, hi = [], NEWEST
    for n, size in enumerate(sizes):
        lo = hi - size * PAGE * MS_PER_EVENT
        out.append(Checkpoint(f"r{n + 1:03d}", hi_ms=hi, lo_ms=lo))
        hi = lo
    return out


def test_no_split_while_the_ranges_left_end_together() -> None:
    planner = _planner(_ranges([4, 4, 4, 4]), 16 * PAGE)
    for _ in range(4):
        planner.next_range(lambda s: None)
    _reading(planner, {"r001": 2, "r002": 2, "r003": 2, "r004": 3})
    splits: list[Split] = []
    assert planner.take(splits.append, idle_readers=2, lanes=3) is None
    assert splits == []


def test_a_range_that_would_end_alone_is_split_in_whole_pages() -> None:
    planner = _planner(_ranges([2, 2, 2, 13]), 19 * PAGE)
    for _ in range(4):
        planner.next_range(lambda s: None)
    _reading(planner, {"r001": 1, "r002": 1, "r003": 1, "r004": 12})
    splits: list[Split] = []
    got = planner.take(splits.append, idle_readers=3, lanes=3)
    assert got is not None and splits and splits[0].parent_id == "r004"
    lo, hi = planner.bounds("r004")
    assert lo is not None and hi is not None
    # r004's reader stands a page below its top: what it keeps is a whole number of pages.
    kept = _events_in(hi - PAGE * MS_PER_EVENT, lo) / PAGE
    assert math.ceil(kept) - 0.03 < kept <= math.ceil(kept) and kept <= 5


def test_fewer_open_ranges_than_lanes_are_split() -> None:
    planner = _planner(_ranges([6]), 6 * PAGE)
    planner.next_range(lambda s: None)
    _reading(planner, {"r001": 5})
    splits: list[Split] = []
    assert planner.take(splits.append, idle_readers=3, lanes=3) is not None
    assert len(splits[0].new_ranges) >= 2
