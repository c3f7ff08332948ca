"""Pagination state of one time range: one owner for "where are we, what do we ask next".

A `RangeCursor` turns its checkpoint into the next request (the service's cursor when the
endpoint that issued it is asked again, else a position rebuilt from the last stored event) and
a page into the advanced checkpoint, whether the range is finished, and which events lie outside
the range. The guards against a service that stops advancing live here too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from ..errors import FatalSourceError
from ..models import Checkpoint, Endpoint, Event, Page, Position
from .cursor import DEFAULT_CURSOR_TTL_MS, cursor_position, forge_cursor

STUCK_HINT = "the service is misbehaving; rerun later: ingest resumes from its checkpoint"
# Same cursor back with hasMore this many times in a row means the service is not advancing.
STUCK_LIMIT = 2


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
        self._repeats = 0

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

    def check(self, page: Page) -> Page:
        """Refuse to loop on a service that hands back the cursor it was given."""
        sent = self._sent
        stuck = page.has_more and (
            (sent is not None and page.next_cursor == sent)
            or (not page.records and page.next_cursor is None)
        )
        self._repeats = self._repeats + 1 if stuck else 0
        if self._repeats >= STUCK_LIMIT:
            self._repeats = 0
            raise FatalSourceError(
                f"the {page.endpoint} endpoint is not advancing: {STUCK_LIMIT} pages in a row "
                "said hasMore but gave back the cursor sent (or nothing to go on); "
                "stopping instead of looping",
                STUCK_HINT,
            )
        return page

    def advance(self, page: Page, events: Sequence[Event], rejected: int) -> Advance:
        """The range after `page` (whose valid records are `events`, in page order)."""
        cp = self.checkpoint
        inside, outside, below = _split_by_range(events, cp.lo_ms, cp.hi_ms)
        last = events[-1] if events else None
        endpoint: Endpoint = page.endpoint
        self.checkpoint = replace(
            cp,
            cursor=page.next_cursor,
            endpoint=endpoint,
            position=Position(last.ts_us // 1000, last.id) if last else cp.position,
            events=cp.events + len(inside),
            rejected=cp.rejected + rejected,
            finished=below or not page.has_more,
        )
        return Advance(self.checkpoint, self.checkpoint.finished, inside, outside)


def _split_by_range(
    events: Sequence[Event], lo: int | None, hi: int | None
) -> tuple[list[Event], list[Event], bool]:
    """Events inside [lo, hi] (inclusive, ms), those outside, and whether any lay below lo."""
    if lo is None and hi is None:
        return list(events), [], False
    lo_us = lo * 1000 if lo is not None else None
    hi_us = (hi + 1) * 1000 if hi is not None else None
    inside: list[Event] = []
    outside: list[Event] = []
    below = False
    for e in events:
        if lo_us is not None and e.ts_us < lo_us:
            below = True
            outside.append(e)
        elif hi_us is not None and e.ts_us >= hi_us:
            outside.append(e)
        else:
            inside.append(e)
    return inside, outside, below
