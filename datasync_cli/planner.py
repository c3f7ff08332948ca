"""Split the stream's time span into ranges for parallel readers, and re-split as readers finish.

Ranges are inclusive timestamp intervals [lo_ms, hi_ms] read newest first. Adjacent ranges share
their boundary instant, so events that tie on it are read by both and deduplicated by the primary
key: a boundary can never lose an event. The bottom range stays open (lo_ms None) so that a wrong
estimate of where the stream ends costs time, never events.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

from .models import Checkpoint


@dataclass
class RangeProgress:
    """What the planner knows about one range while it is being read."""

    checkpoint: Checkpoint
    top_ms: int | None = None  # newest timestamp seen in this range
    pos_ms: int | None = None  # oldest timestamp fetched so far (ahead of what is committed)
    fetched: int = 0
    assigned: bool = False


@dataclass(frozen=True)
class Split:
    """A split decided by the planner: the parent range's new lower bound and the new ranges
    below it."""

    parent_id: str
    parent_lo_ms: int
    new_ranges: list[Checkpoint]


class RangePlanner:
    """Hands ranges to idle readers; splits the largest remaining range when none is free.

    The density of events per millisecond is learnt from what readers fetched, and the oldest
    instant is estimated from the source's total, so splits land where the events are.
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

    # -- assignment -----------------------------------------------------------------------
    def next_range(
        self, persist_split: Callable[[Split], None], idle_readers: int = 1, wait_s: float = 0.5
    ) -> Checkpoint | None:
        """Block until a range is free (or one can be split off); None when all are done."""
        with self._lock:
            while not self._closed:
                for rp in self._ranges.values():
                    if not rp.checkpoint.finished and not rp.assigned:
                        rp.assigned = True
                        return rp.checkpoint
                if all(rp.checkpoint.finished for rp in self._ranges.values()):
                    return None
                split = self._plan_split(idle_readers)
                if split is not None:
                    persist_split(split)  # durable before any reader relies on it
                    self._apply(split)
                    first = split.new_ranges[0]
                    self._ranges[first.range_id].assigned = True
                    return first
                self._lock.wait(wait_s)
            return None

    def _apply(self, split: Split) -> None:
        parent = self._ranges[split.parent_id]
        parent.checkpoint = replace(parent.checkpoint, lo_ms=split.parent_lo_ms)
        for cp in split.new_ranges:
            self._ranges[cp.range_id] = RangeProgress(cp, top_ms=cp.hi_ms, pos_ms=cp.hi_ms)

    def _density(self) -> float | None:
        events = 0
        span = 0
        for rp in self._ranges.values():
            if rp.top_ms is not None and rp.pos_ms is not None and rp.fetched:
                events += rp.fetched
                span += max(rp.top_ms - rp.pos_ms, 0)
        if events < self.page_size or span <= 0:
            return None
        return events / span

    def _estimated_oldest(self, density: float) -> int | None:
        tops = [rp.top_ms for rp in self._ranges.values() if rp.top_ms is not None]
        if self.total is None or not tops:
            return None
        return int(max(tops) - self.total / density)

    def _bottom_floor_by_count(self, density: float) -> int | None:
        """Where the open-ended range ends if it holds every event not yet fetched elsewhere."""
        if self.total is None:
            return None
        left = self.total - self._stored_before - sum(rp.fetched for rp in self._ranges.values())
        bottom: RangeProgress | None = None
        for rp in self._ranges.values():
            cp = rp.checkpoint
            if cp.finished:
                continue
            if cp.lo_ms is None:
                bottom = rp
            elif rp.pos_ms is not None:
                left -= int(max(rp.pos_ms - cp.lo_ms, 0) * density)
        if bottom is None or bottom.pos_ms is None or left <= 0:
            return None
        return int(bottom.pos_ms - left / density)

    def _plan_split(self, idle_readers: int) -> Split | None:
        density = self._density()
        if density is None:
            return None
        oldest = self._estimated_oldest(density)
        bottom_floor = self._bottom_floor_by_count(density)
        best: tuple[float, RangeProgress, int, int] | None = None
        for rp in self._ranges.values():
            cp = rp.checkpoint
            if cp.finished or not rp.assigned or rp.pos_ms is None or not rp.fetched:
                # A range nobody has read from yet shows no events to share: splitting it on an
                # estimate alone could chase an estimated floor into an empty past.
                continue
            floor = cp.lo_ms if cp.lo_ms is not None else oldest
            if cp.lo_ms is None and bottom_floor is not None:
                # The open range holds whatever the source still owes: that count says more
                # than an instant extrapolated from the newest event, above all when resuming
                # (the ranges that held the newest events may be finished and gone).
                floor = bottom_floor
            if floor is None:
                # No total to estimate from: assume as much again lies below as was read above.
                floor = rp.pos_ms - max((rp.top_ms or rp.pos_ms) - rp.pos_ms, 1)
            remaining = (rp.pos_ms - floor) * density
            if best is None or remaining > best[0]:
                best = (remaining, rp, rp.pos_ms, floor)
        if best is None:
            return None
        remaining, rp, start, floor = best
        pieces = min(idle_readers + 1, int(remaining // self.page_size))
        if pieces < 2 or start - floor < pieces * 2:
            return None
        step = (start - floor) // pieces
        cuts = [start - step * k for k in range(1, pieces)]
        parent = rp.checkpoint
        new_ranges: list[Checkpoint] = []
        for i, hi in enumerate(cuts):
            lo = cuts[i + 1] if i + 1 < len(cuts) else parent.lo_ms
            self._seq += 1
            new_ranges.append(Checkpoint(range_id=f"r{self._seq:03d}", hi_ms=hi, lo_ms=lo))
        return Split(parent.range_id, cuts[0], new_ranges)


def _seq_of(range_id: str) -> int:
    digits = range_id.lstrip("r")
    return int(digits) if digits.isdigit() else 0
