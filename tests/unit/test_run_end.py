"""The end of a run: readers, RangePlanner and FeedThrottle together on the fake clock, against
a simulated service whose feed hides a token bucket (no sockets, no database).

Each range is read page after page (a page's request needs the page before it), so a range
left with many pages at the end is read alone, one round trip per page, while the throttle
would allow more. The planner splits ranges in whole pages and the throttle serves the reader
with the most left first: every reader finishes within about one round trip of the others,
without a part-filled page per piece.
"""

from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass, field

import pytest

from datasync_cli.clock import FakeClock
from datasync_cli.models import Checkpoint
from datasync_cli.planner import RangePlanner
from datasync_cli.source import FeedThrottle

NEWEST = 1_769_541_600_000
MS_PER_EVENT = 10  # the stream: one event every 10 ms, newest first
PAGE = 5000
LATENCY, JITTER = 3.5, 0.35  # seconds per request, as in bench/latency_bound.py
RATE, BURST = 0.8, 2  # the feed's hidden bucket
READERS = 8


def _index_at_or_before(ts_ms: int) -> int:
    """The first event (newest first) whose timestamp is at or before `ts_ms`."""
    return max(0, -((ts_ms - NEWEST) // MS_PER_EVENT))


@dataclass
class Run:
    finished: list[float] = field(default_factory=list)  # when each range finished
    pages: int = 0  # feed pages read
    refused: int = 0
    events: int = 0
    open_ranges: list[tuple[float, int]] = field(default_factory=list)  # (when, ranges open)


class _Service:
    """The feed's hidden bucket, checked when a request arrives (after its latency)."""

    def __init__(self) -> None:
        self.tokens, self.seen = float(BURST), 0.0

    def take(self, now: float) -> float:
        self.tokens, self.seen = min(BURST, self.tokens + (now - self.seen) * RATE), now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / RATE


def simulate(events: int, seed: int) -> Run:
    """One ingest: the first page from the standard endpoint beside the token request (one
    round trip), then the feed, READERS readers taking ranges from the planner."""
    rng = random.Random(seed)
    clock = FakeClock(start=0.0)
    throttle = FeedThrottle(clock, READERS)
    planner = RangePlanner([Checkpoint("r000")], PAGE)
    service, run = _Service(), Run()
    queue: list[tuple[float, int, int, str, float]] = []
    reading: dict[int, tuple[str, int]] = {}  # reader -> (range, next event index)
    tickets: dict[int, int] = {}
    seq = 0

    def at(when: float, reader: int, kind: str, sent: float = 0.0) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(queue, (when, seq, reader, kind, sent))

    def page_read(reader: int, now: float) -> None:
        range_id, start = reading[reader]
        lo, _ = planner.bounds(range_id)
        stop = events if lo is None else min(events, _index_at_or_before(lo - 1))
        end = min(start + PAGE, stop)
        if end > start:
            newest, oldest = NEWEST - start * MS_PER_EVENT, NEWEST - (end - 1) * MS_PER_EVENT
            planner.observe(range_id, newest, oldest, end - start)
            run.events += end - start
        reading[reader] = (range_id, end)
        if end >= stop:
            planner.finish(range_id)
            run.finished.append(now)
            del reading[reader]
            at(now, reader, "idle")
        else:
            at(now, reader, "try")

    first = planner.take(lambda split: None)
    assert first is not None
    reading[0] = (first.range_id, 0)
    at(LATENCY + rng.uniform(0, JITTER), 0, "first")
    for reader in range(1, READERS):
        at(0.0, reader, "idle")
    while queue:
        now, _, reader, kind, sent = heapq.heappop(queue)
        clock.advance(max(0.0, now - clock.monotonic()))
        if kind == "first":
            throttle.expect_latency(now)
            planner.set_total(events)
            page_read(reader, now)
        elif kind == "idle":
            got = planner.take(lambda split: None, READERS - len(reading), throttle.lanes())
            run.open_ranges.append((now, planner.unfinished()))
            if got is not None:
                _, hi = got.hi_ms, got.hi_ms
                reading[reader] = (got.range_id, 0 if hi is None else _index_at_or_before(hi))
                at(now, reader, "try")
            elif not planner.done():
                at(now + 0.05, reader, "idle")
        elif kind == "try":
            range_id, _ = reading[reader]
            if reader not in tickets:
                tickets[reader] = throttle.enqueue(planner.pages_left(range_id))
            wait = throttle.try_acquire(tickets[reader])
            if wait > 0:
                at(now + wait, reader, "try")
            else:
                del tickets[reader]
                at(now + LATENCY + rng.uniform(0, JITTER), reader, "check", now)
        elif kind == "check":
            refused = service.take(now)
            if refused:
                run.refused += 1
                throttle.on_throttled(float(math.ceil(refused)), sent)
                at(now + math.ceil(refused), reader, "try")
            else:
                run.pages += 1
                throttle.on_success(now - sent, sent)
                page_read(reader, now)
    return run


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("events", [300_000, 1_000_000])
def test_the_readers_finish_within_about_one_round_trip_of_each_other(
    events: int, seed: int
) -> None:
    run = simulate(events, seed)
    assert run.events >= events  # every event read (boundaries may be read twice)
    ends = sorted(run.finished)
    round_trip = LATENCY + JITTER
    # The last reader is not left reading alone: it finishes within a round trip of the one
    # before it, and the last three within a round trip and the pace's interval.
    assert ends[-1] - ends[-2] <= round_trip
    assert ends[-1] - ends[-3] <= round_trip + 1 / RATE
    # Whole-page pieces: one part-filled page for the whole plan, not one per range.
    feed_pages_needed = math.ceil(events / PAGE) - 1  # the first page came from elsewhere
    assert run.pages <= feed_pages_needed + 1
    # And the run as a whole is close to what the bucket allows: its burst, then one request
    # per 1/RATE s, from the first round trip (first page and token) to the last answer.
    ideal = 2 * (LATENCY + JITTER / 2) + (feed_pages_needed - BURST) / RATE
    assert ends[-1] <= ideal + 3 * round_trip
    assert run.refused <= 8
