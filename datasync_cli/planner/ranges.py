"""Split the stream's time span into ranges for parallel readers, and re-split as readers finish.

Ranges are inclusive timestamp intervals [lo_ms, hi_ms] read newest first. Adjacent ranges share
their boundary instant, so events that tie on it are read by both and deduplicated by the primary
key: a boundary can never lose an event. The bottom range stays open (lo_ms None) so that a wrong
estimate of where the stream ends costs time, never events.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace

from ..models import Checkpoint
from .rangeplan import RangeEstimates, RangeProgress, Split, plan_split

__all__ = ["RangePlanner", "RangeProgress", "Split"]


class RangePlanner:
    """Hands ranges to idle readers; splits the range that would otherwise finish last.

    The density of events per millisecond is learnt from what readers fetched (each range's
    own, once it has read a page), and the oldest instant is estimated from the source's total,
    so splits land where the events are. A split is worth it when the largest range needs more
    round trips than the rest take together, spread over the requests the source allows in
    flight (`lanes`), or when fewer ranges are open than that: then the run would end with one
    range read page after page. Its pieces take whole pages (see `pieces`).
    """

    def __init__(
        self,
        checkpoints: list[Checkpoint],
        page_size: int,
        stored_before: int = 0,
    ) -> None:
        """`stored_before`: events the ranges stored in earlier runs (a resumed run owes the
        source's total minus those, not the whole total)."""
        self._lock = threading.Condition()
        self._ranges: dict[str, RangeProgress] = {}
        for cp in checkpoints:
            pos = cp.position.ts_ms if cp.position else None
            self._ranges[cp.range_id] = RangeProgress(cp, top_ms=pos, pos_ms=pos)
        self.total: int | None = None
        self.page_size = page_size
        self._stored_before = stored_before
        self._seq = max((_seq_of(cp.range_id) for cp in checkpoints), default=0)
        self._closed = False

    # -- state fed by readers -------------------------------------------------------------
    def set_total(self, total: int | None) -> None:
        with self._lock:
            if total is not None:
                self.total = total

    def observe(self, range_id: str, newest_ms: int | None, oldest_ms: int | None, n: int) -> None:
        """Record a fetched page's span so later splits know the event density."""
        with self._lock:
            rp = self._ranges[range_id]
            if newest_ms is not None and (rp.top_ms is None or newest_ms > rp.top_ms):
                rp.top_ms = newest_ms
            if oldest_ms is not None and (rp.pos_ms is None or oldest_ms < rp.pos_ms):
                rp.pos_ms = oldest_ms
            rp.fetched += n
            self._lock.notify_all()

    def finish(self, range_id: str) -> None:
        with self._lock:
            rp = self._ranges[range_id]
            rp.checkpoint = replace(rp.checkpoint, finished=True)
            rp.assigned = False
            self._lock.notify_all()

    def release(self, range_id: str) -> None:
        """A reader stopped without finishing its range (stop flag or error)."""
        with self._lock:
            self._ranges[range_id].assigned = False
            self._lock.notify_all()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify_all()

    def bounds(self, range_id: str) -> tuple[int | None, int | None]:
        with self._lock:
            cp = self._ranges[range_id].checkpoint
            return cp.lo_ms, cp.hi_ms

    def unfinished(self) -> int:
        with self._lock:
            return sum(1 for rp in self._ranges.values() if not rp.checkpoint.finished)

    def pages_left(self, range_id: str) -> float:
        """About how many pages the range still holds (0.0 while nothing is known): the
        reader with the most left should send first, so that ranges end together."""
        with self._lock:
            return self._estimates().pages_left(self._ranges[range_id])

    def pages_left_in_all(self) -> float | None:
        """About how many pages all unfinished ranges still hold, or None while unknown."""
        with self._lock:
            estimates = self._estimates()
            if estimates.density is None:
                return None
            return sum(estimates.pages_left(rp) for rp in self._ranges.values())

    # -- assignment -----------------------------------------------------------------------
    def next_range(
        self,
        persist_split: Callable[[Split], None],
        idle_readers: int = 1,
        wait_s: float = 0.5,
        lanes: int | None = None,
    ) -> Checkpoint | None:
        """Block until a range is free (or one can be split off); None when all are done.

        `lanes`: how many requests the source lets us keep in flight (by default as many as
        there are readers, idle and busy)."""
        with self._lock:
            while not self._closed:
                got = self._take_locked(persist_split, idle_readers, lanes)
                if got is not None or self._done_locked():
                    return got
                self._lock.wait(wait_s)
            return None

    def take(
        self,
        persist_split: Callable[[Split], None],
        idle_readers: int = 1,
        lanes: int | None = None,
    ) -> Checkpoint | None:
        """A free range (or one split off) now, else None; never blocks."""
        with self._lock:
            if self._closed:
                return None
            return self._take_locked(persist_split, idle_readers, lanes)

    def done(self) -> bool:
        """Whether every range is finished."""
        with self._lock:
            return self._done_locked()

    def _done_locked(self) -> bool:
        return all(rp.checkpoint.finished for rp in self._ranges.values())

    def _take_locked(
        self, persist_split: Callable[[Split], None], idle_readers: int, lanes: int | None
    ) -> Checkpoint | None:
        for rp in self._ranges.values():
            if not rp.checkpoint.finished and not rp.assigned:
                rp.assigned = True
                return rp.checkpoint
        if self._done_locked():
            return None
        busy = sum(1 for rp in self._ranges.values() if rp.assigned)
        split = self._plan_split(idle_readers, lanes if lanes is not None else idle_readers + busy)
        if split is None:
            return None
        persist_split(split)  # durable before any reader relies on it
        self._apply(split)
        first = split.new_ranges[0]
        self._ranges[first.range_id].assigned = True
        return first

    def _apply(self, split: Split) -> None:
        parent = self._ranges[split.parent_id]
        parent.checkpoint = replace(parent.checkpoint, lo_ms=split.parent_lo_ms)
        for cp in split.new_ranges:
            self._ranges[cp.range_id] = RangeProgress(cp, top_ms=cp.hi_ms, pos_ms=cp.hi_ms)

    def _estimates(self) -> RangeEstimates:
        return RangeEstimates(self._ranges, self.page_size, self.total, self._stored_before)

    def _plan_split(self, idle_readers: int, lanes: int) -> Split | None:
        planned = plan_split(
            self._estimates(), self._ranges, self.page_size, idle_readers, lanes
        )
        if planned is None:
            return None
        victim, cuts = planned
        parent = victim.checkpoint
        new_ranges: list[Checkpoint] = []
        for i, hi in enumerate(cuts):
            lo = cuts[i + 1] if i + 1 < len(cuts) else parent.lo_ms
            self._seq += 1
            new_ranges.append(Checkpoint(range_id=f"r{self._seq:03d}", hi_ms=hi, lo_ms=lo))
        return Split(parent.range_id, cuts[0], new_ranges)


def _seq_of(range_id: str) -> int:
    digits = range_id.lstrip("r")
    return int(digits) if digits.isdigit() else 0
