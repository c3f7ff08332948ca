"""Pagination state of one time range: one owner for "where are we, what do we ask next".

A `RangeCursor` turns its checkpoint into the next request (the service's cursor when the
endpoint that issued it is asked again, else a position rebuilt from the last stored event) and
a page into the advanced checkpoint, whether the range is finished, and which events lie outside
the range. The guards against a service that stops advancing live here too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from ..models import Checkpoint, Event, Page, Position
from .cursor import DEFAULT_CURSOR_TTL_MS, cursor_position, forge_cursor
from .errors import SourceNotAdvancingError

STUCK_HINT = "the service is misbehaving; rerun later: ingest resumes from its checkpoint"
# Pages in a row that say hasMore without progress (no records, a cursor seen before, no move
# past the last stored event) before the range is declared stuck.
STALL_LIMIT = 3
_SEEN_LIMIT = 100_000  # cursors remembered per range (a range of 3,000,000 events has 600)


@dataclass(frozen=True, slots=True)
class FeedRequest:
    """The feed's parameters for the next page: its cursor, or bounds rebuilt from a position."""

    cursor: str | None
    since_ms: int | None
    until_ms: int | None


@dataclass(frozen=True, slots=True)
class Advance:
    """What one page did to its range: the checkpoint to store with it, whether the range is
    done, and the page's events split into those inside the range and those outside it."""

    checkpoint: Checkpoint
    finished: bool
    inside: list[Event]
    outside: list[Event]


class RangeCursor:
    """Where one range stands and what to ask for next; one per range being read."""

    def __init__(self, checkpoint: Checkpoint, cursor_ttl_ms: int = DEFAULT_CURSOR_TTL_MS) -> None:
        self.checkpoint = checkpoint
        self._cursor_ttl_ms = cursor_ttl_ms
        self._sent: str | None = None
        self._seen: set[str] = set()
        self._stalls = 0

    @property
    def range_id(self) -> str:
        return self.checkpoint.range_id

    def bound(self, lo_ms: int | None, hi_ms: int | None) -> None:
        """The planner moved the range's bounds (a split handed its older part elsewhere)."""
        self.checkpoint = replace(self.checkpoint, lo_ms=lo_ms, hi_ms=hi_ms)

    # -- requests -----------------------------------------------------------------------------

    def feed_request(self, *, keep_cursor: bool = True) -> FeedRequest:
        """The feed's next request; `keep_cursor=False` after the service refused the cursor."""
        cp = self.checkpoint
        if keep_cursor and cp.cursor and cp.endpoint == "feed":
            request = FeedRequest(cp.cursor, cp.lo_ms, cp.hi_ms)
        else:
            # No usable cursor: bound by the last stored instant, inclusive; the events read
            # again at that instant are duplicates the primary key absorbs, which makes ties safe.
            position = self.position()
            until = position.ts_ms if position is not None else cp.hi_ms
            request = FeedRequest(None, cp.lo_ms, until)
        self._sent = request.cursor
        return request

    def standard_cursor(self, now_ms: int, *, keep_cursor: bool = True) -> str | None:
        """The standard endpoint's next cursor: the saved one, or one forged for the position."""
        cp = self.checkpoint
        if keep_cursor and cp.cursor and cp.endpoint == "standard":
            cursor: str | None = cp.cursor
        elif (position := self.position()) is not None:
            cursor = forge_cursor(position, now_ms, self._cursor_ttl_ms)
        elif cp.hi_ms is not None:
            # Just above the range's top: every event at hi_ms itself is included.
            cursor = forge_cursor(Position(cp.hi_ms + 1, ""), now_ms, self._cursor_ttl_ms)
        else:
            cursor = None
        self._sent = cursor
        return cursor

    def position(self) -> Position | None:
        """The last stored event, or failing that the position a saved cursor names."""
        return self.checkpoint.position or cursor_position(self.checkpoint.cursor)

    # -- pages --------------------------------------------------------------------------------

    def advance(self, page: Page, events: Sequence[Event], rejected: int) -> Advance:
        """The range after `page` (whose valid records are `events`, in page order).

        Every event is handed back, inside or outside the range, so none is dropped unseen.
        Raises SourceNotAdvancingError when the service keeps answering without progress."""
        cp = self.checkpoint
        inside, outside = _split_by_range(events, cp.lo_ms, cp.hi_ms)
        end = _end_position(events, cp.lo_ms)
        finished = not page.has_more or _crossed_floor(events, cp.lo_ms)
        self._guard(page, end, bool(events), finished)
        self.checkpoint = replace(
            cp,
            cursor=page.next_cursor,
            endpoint=page.endpoint,
            position=end or cp.position,
            events=cp.events + len(inside),
            rejected=cp.rejected + rejected,
            finished=finished,
            head_ms=cp.head_ms if cp.head_ms is not None else self._head(events),
        )
        return Advance(self.checkpoint, finished, inside, outside)

    def _head(self, events: Sequence[Event]) -> int | None:
        """Where the stream's newest events were when this run began: the median instant of
        the top range's first page, so no single outlier (a year-9999 timestamp) can move it."""
        cp = self.checkpoint
        if cp.hi_ms is not None or cp.position is not None or not events:
            return None
        return sorted(e.ts_us for e in events)[len(events) // 2] // 1000

    def _guard(
        self, page: Page, end: Position | None, has_events: bool, finished: bool
    ) -> None:
        """Count pages that say hasMore but make no progress; stop after STALL_LIMIT in a row.

        `end` is where the page's events end; a page of only rejected records has none."""
        sent, next_cursor = self._sent, page.next_cursor
        if sent is not None:
            self._seen.add(sent)
        problem = None
        if not finished:
            if not page.records:
                problem = "empty pages said hasMore"
            elif next_cursor is not None and next_cursor in self._seen:
                problem = "pages gave back a cursor already used in this range"
            elif has_events and not _after(end, self.checkpoint.position):
                problem = "pages did not move past the last stored event (or moved backwards)"
        if problem is None:
            self._stalls = 0
        else:
            self._stalls += 1
            if self._stalls >= STALL_LIMIT:
                raise SourceNotAdvancingError(
                    f"the {page.endpoint} endpoint is not advancing: {STALL_LIMIT} {problem}; "
                    "stopping instead of looping",
                    STUCK_HINT,
                )
        if next_cursor is not None and len(self._seen) < _SEEN_LIMIT:
            self._seen.add(next_cursor)


def _after(new: Position | None, old: Position | None) -> bool:
    """Whether `new` lies further down the stream (older, or another event at the same
    instant) than `old`."""
    if new is None:
        return False
    if old is None:
        return True
    return new.ts_ms < old.ts_ms or (new.ts_ms == old.ts_ms and new.event_id != old.event_id)


def _end_position(events: Sequence[Event], lo_ms: int | None) -> Position | None:
    """The position to resume after: the page's last event, or the last one inside the range
    when the page reached below it."""
    floor = None if lo_ms is None else lo_ms * 1000
    for event in reversed(events):
        if floor is None or event.ts_us >= floor:
            return Position(event.ts_us // 1000, event.id)
    return None


def _crossed_floor(events: Sequence[Event], lo_ms: int | None) -> bool:
    """Whether the page went past the range's floor: its last two events (its only one, on a
    one-event page) lie below it. A single out-of-order record (1970 among new events) does
    not end a range."""
    if lo_ms is None or not events:
        return False
    floor = lo_ms * 1000
    return all(e.ts_us < floor for e in events[-2:])


def _split_by_range(
    events: Sequence[Event], lo: int | None, hi: int | None
) -> tuple[list[Event], list[Event]]:
    """Events inside [lo, hi] (inclusive, ms) and those outside it."""
    if lo is None and hi is None:
        return list(events), []
    lo_us = lo * 1000 if lo is not None else None
    hi_us = (hi + 1) * 1000 if hi is not None else None
    inside: list[Event] = []
    outside: list[Event] = []
    for e in events:
        if (lo_us is not None and e.ts_us < lo_us) or (hi_us is not None and e.ts_us >= hi_us):
            outside.append(e)
        else:
            inside.append(e)
    return inside, outside
