"""What the ranges being read have shown, and where to split one so that all end together.

The planner keeps the ranges; this module reads them: the event density (overall, and each
range's own once it has read a page's worth), where each range ends, how many pages each has
left, and which range to split into how many pieces.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from ..models import Checkpoint
from .pieces import cut_points


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


class RangeEstimates:
    """Estimates over the ranges as they stand now (taken under the planner's lock).

    `total` is the source's count and `stored_before` what earlier runs stored of it (a
    resumed run owes the difference, not the whole total). None of it is ever exact: a wrong
    estimate costs a part-filled page or a split too many, never an event.
    """

    def __init__(
        self,
        ranges: Mapping[str, RangeProgress],
        page_size: int,
        total: int | None,
        stored_before: int,
    ) -> None:
        self._ranges = ranges
        self._page_size = page_size
        self._total = total
        self._stored_before = stored_before
        self.density = self._overall_density()
        self._bottom = self._bottom_floor() if self.density is not None else None

    def pages_left(self, rp: RangeProgress) -> float:
        """About how many pages the range still holds (0.0 while nothing is known)."""
        if self.density is None or rp.checkpoint.finished:
            return 0.0
        floor = self.floor(rp)
        start = rp.pos_ms if rp.pos_ms is not None else rp.checkpoint.hi_ms
        if floor is None or start is None:
            return 0.0
        return max(start - floor, 0) * self.density_of(rp) / self._page_size

    def density_of(self, rp: RangeProgress) -> float:
        """The range's own density once it has read a page's worth: the stream's density
        varies, and the range's own past is the best guess at what lies just below it."""
        assert self.density is not None
        if rp.top_ms is None or rp.pos_ms is None or rp.fetched < self._page_size:
            return self.density
        span = rp.top_ms - rp.pos_ms
        return rp.fetched / span if span > 0 else self.density

    def floor(self, rp: RangeProgress) -> int | None:
        """The instant the range ends at: its bound, or for the open bottom range an estimate."""
        cp = rp.checkpoint
        if cp.lo_ms is not None:
            return cp.lo_ms
        if self._bottom is not None:
            # The open range holds whatever the source still owes: that count says more
            # than an instant extrapolated from the newest event, above all when resuming
            # (the ranges that held the newest events may be finished and gone).
            return self._bottom
        tops = [r.top_ms for r in self._ranges.values() if r.top_ms is not None]
        if self._total is not None and tops and self.density:
            return int(max(tops) - self._total / self.density)
        if rp.pos_ms is None:
            return None
        # No total to estimate from: assume as much again lies below as was read above.
        return rp.pos_ms - max((rp.top_ms or rp.pos_ms) - rp.pos_ms, 1)

    def _overall_density(self) -> float | None:
        """Events per millisecond over everything fetched, or None before a page's worth."""
        events = span = 0
        for rp in self._ranges.values():
            if rp.top_ms is not None and rp.pos_ms is not None and rp.fetched:
                events += rp.fetched
                span += max(rp.top_ms - rp.pos_ms, 0)
        if events < self._page_size or span <= 0:
            return None
        return events / span

    def _bottom_floor(self) -> int | None:
        """Where the open-ended range ends if it holds every event not yet fetched elsewhere."""
        if self._total is None:
            return None
        fetched = sum(rp.fetched for rp in self._ranges.values())
        left = self._total - self._stored_before - fetched
        bottom: RangeProgress | None = None
        for rp in self._ranges.values():
            cp = rp.checkpoint
            if cp.finished:
                continue
            if cp.lo_ms is None:
                bottom = rp
            elif rp.pos_ms is not None:
                left -= int(max(rp.pos_ms - cp.lo_ms, 0) * self.density_of(rp))
        if bottom is None or bottom.pos_ms is None or left <= 0:
            return None
        return int(bottom.pos_ms - left / self.density_of(bottom))


def plan_split(
    estimates: RangeEstimates,
    ranges: Mapping[str, RangeProgress],
    page_size: int,
    idle_readers: int,
    lanes: int,
) -> tuple[RangeProgress, list[int]] | None:
    """The range to split and where to cut it, or None when no split would end the run sooner.

    The largest range is split when it needs more round trips than the rest take together
    spread over the `lanes` requests the source allows in flight (it would finish alone, read
    page after page), or when fewer ranges are open than `lanes`. Its pieces take about the
    same round trips each. Only ranges that have shown events are split: an estimate alone
    never sends readers into an empty past."""
    if estimates.density is None:
        return None
    left = {
        rid: estimates.pages_left(rp) for rid, rp in ranges.items() if not rp.checkpoint.finished
    }
    candidates = [
        rp
        for rid, rp in ranges.items()
        if rid in left and rp.assigned and rp.pos_ms is not None and rp.fetched
    ]
    if not candidates:
        return None
    victim = max(candidates, key=lambda rp: left[rp.checkpoint.range_id])
    pages = left[victim.checkpoint.range_id]
    each = max(sum(left.values()) / max(lanes, 1), 1.0)  # round trips if all end together
    missing = max(lanes - len(left), 0)
    if pages <= each + 1.0 and not missing:
        return None
    pieces = min(idle_readers + 1, max(missing + 1, math.ceil(pages / each)))
    floor = estimates.floor(victim)
    if floor is None or pieces < 2 or victim.pos_ms is None:
        return None
    density = estimates.density_of(victim)
    cuts = cut_points(victim.pos_ms, floor, density, page_size, pieces)
    return (victim, cuts) if cuts else None
