"""The stream as served: timeline and bodies plus bad records, duplicates and an early end."""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from typing import Any

from .config import MockConfig
from .faults import AWKWARD_KINDS, BAD_KINDS, apply_kind
from .records import RecordFactory
from .timeline import Timeline

DUPLICATE_GAP = 5_003  # a copy is served about one full page after its original


@dataclass(frozen=True)
class PageSlice:
    """One page of records; `last_index` is the stream index its next cursor points after."""

    records: list[Any]  # dicts, or with as_json also orjson fragments
    last_index: int | None
    has_more: bool


def _spread(count: int, size: int) -> list[int]:
    """`count` indices spread evenly through [0, size), one in the middle of each share."""
    return [((2 * k + 1) * size) // (2 * count) for k in range(count)]


class EventStream:
    """Every record the simulator serves, addressed by index; nothing held per event."""

    def __init__(self, config: MockConfig) -> None:
        size = config.events
        self.size = size
        self.timeline = Timeline(config.seed, size)
        self.factory = RecordFactory(config.seed, size)
        self.kinds: dict[int, str] = {}
        for k, index in enumerate(_spread(config.bad_records, size)):
            self.kinds[index] = BAD_KINDS[k % len(BAD_KINDS)]
            # Spacing is at least 4 (bad_records <= size / 4), so index + 1 is never bad.
            self.kinds[index + 1] = AWKWARD_KINDS[k % len(AWKWARD_KINDS)]
        self._kind_positions = sorted(self.kinds)
        self.copies: dict[int, list[int]] = {}
        self.copied: list[int] = []
        self._place_duplicates(config.duplicates)
        self._hosts = sorted(self.copies)
        self.served_end = size if config.early_end >= 1.0 else int(size * config.early_end)
        self.reported_total = size - config.extra_ids

    def _place_duplicates(self, count: int) -> None:
        taken = set(self.kinds)
        for base in _spread(count, self.size):
            source = base
            while source in taken and source < self.size - 2:
                source += 1
            while source in taken and source > 0:
                source -= 1
            # About a page later; near the end of the stream, half way to the end.
            host = source + DUPLICATE_GAP
            if host >= self.size:
                host = source + max(1, (self.size - 1 - source) // 2)
            if source in taken or host >= self.size:
                continue
            taken.add(source)
            self.copied.append(source)
            self.copies.setdefault(host, []).append(source)

    def is_bad(self, index: int) -> bool:
        return self.kinds.get(index) in BAD_KINDS

    def bounds(self, since_ms: int | None, until_ms: int | None) -> tuple[int, int]:
        """The index range [first, stop) of events with since_ms <= timestamp <= until_ms."""
        tl = self.timeline
        first = 0 if until_ms is None else tl.first_at_or_before(until_ms)
        stop = self.size if since_ms is None else tl.first_at_or_before(since_ms - 1)
        return first, stop

    def record(self, index: int, epoch_only: bool) -> dict[str, Any]:
        """One record exactly as a page would carry it."""
        tl = self.timeline
        record = self.factory.event(index, tl.ts(index), tl.event_id(index), epoch_only)
        kind = self.kinds.get(index)
        return apply_kind(record, kind) if kind else record

    def page(
        self,
        start: int,
        stop: int,
        limit: int,
        epoch_only: bool,
        lo_ms: int | None = None,
        hi_ms: int | None = None,
        as_json: bool = False,
    ) -> PageSlice:
        """Up to `limit` records from index `start`, never past `stop` or the early end.

        A duplicate is served just before its host event and never last on a page, so the
        next cursor always points after a real stream position. With `as_json` ordinary
        events come as JSON fragments (see RecordFactory.events), faulted ones and copies as
        dicts; orjson writes both alike.
        """
        stop = min(stop, self.served_end)
        if start >= stop:
            return PageSlice([], None, False)
        room, end, full = limit, start, False
        inserts: list[tuple[int, int]] = []
        k = bisect_left(self._hosts, start)
        while k < len(self._hosts) and self._hosts[k] < stop:
            host = self._hosts[k]
            k += 1
            if host - end >= room:
                end, full = end + room, True
                break
            room -= host - end
            end = host
            sources = [s for s in self.copies[host] if self._within(s, lo_ms, hi_ms)]
            if sources and len(sources) + 1 > room:
                if end > start:
                    full = True  # the host and its copies open the next page
                    break
                sources = []  # a page too small for the copies: the host alone
            inserts.extend((host, s) for s in sources)
            room -= len(sources) + 1
            end = host + 1
            if room == 0:
                full = True
                break
        if not full:
            end = min(stop, end + room)
        stamps, ids = self.timeline.span(start, end)
        records = self.factory.events(start, stamps, ids, epoch_only, as_json)
        for index in self._kind_positions[
            bisect_left(self._kind_positions, start) : bisect_left(self._kind_positions, end)
        ]:
            records[index - start] = self.record(index, epoch_only)
        for host, source in reversed(inserts):
            records.insert(host - start, self.record(source, epoch_only))
        return PageSlice(records, end - 1, end < stop)

    def _within(self, index: int, lo_ms: int | None, hi_ms: int | None) -> bool:
        if lo_ms is None and hi_ms is None:
            return True
        ts = self.timeline.ts(index)
        return (lo_ms is None or ts >= lo_ms) and (hi_ms is None or ts <= hi_ms)
