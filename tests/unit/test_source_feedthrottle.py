"""FeedThrottle against a simulated token-bucket server on the fake clock."""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import pytest

from datasync_cli.clock import FakeClock
from datasync_cli.source import FeedThrottle


@dataclass
class Outcome:
    successes: int
    throttled: int
    late_successes: int  # during the last `tail_s` seconds
    final_rate: float | None


def simulate(
    *,
    readers: int,
    rate: float,
    burst: int,
    latency_s: float,
    duration_s: float = 300.0,
    whole_seconds: bool = False,
    tail_s: float = 120.0,
    throttled_after_s: float = 0.05,
) -> Outcome:
    """Readers looping on a server whose hidden throttle is a token bucket; events in time order."""
    clock = FakeClock(start=0.0)
    throttle = FeedThrottle(clock, readers)
    tokens, refilled_at = float(burst), 0.0
    queue: list[tuple[float, int, str, float, float]] = [
        (0.0, n, "try", 0.0, 0.0) for n in range(readers)
    ]
    successes = throttled = late = 0
    while queue:
        at, reader, kind, sent_at, retry_after = heapq.heappop(queue)
        if at > duration_s:
            break
        clock.advance(max(0.0, at - clock.monotonic()))
        now = clock.monotonic()
        if kind == "try":
            wait = throttle.try_acquire()
            if wait > 0:
                heapq.heappush(queue, (now + wait, reader, "try", 0.0, 0.0))
                continue
            tokens, refilled_at = min(burst, tokens + (now - refilled_at) * rate), now
            if tokens >= 1:
                tokens -= 1
                heapq.heappush(queue, (now + latency_s, reader, "ok", now, 0.0))
            else:
                after = (1 - tokens) / rate
                after = math.ceil(after) if whole_seconds else after
                heapq.heappush(queue, (now + throttled_after_s, reader, "429", now, after))
        elif kind == "ok":
            successes += 1
            late += now > duration_s - tail_s
            throttle.on_success(now - sent_at, sent_at)
            heapq.heappush(queue, (now, reader, "try", 0.0, 0.0))
        else:
            throttled += 1
            throttle.on_throttled(retry_after, sent_at)
            heapq.heappush(queue, (now, reader, "try", 0.0, 0.0))
    assert throttled == throttle.throttled
    return Outcome(successes, throttled, late, throttle.rate)


@pytest.mark.parametrize(
    ("readers", "latency_s", "burst", "whole_seconds", "throttled_after_s"),
    [
        (8, 3.5, 4, False, 0.05),
        (8, 3.5, 4, True, 0.05),
        (8, 0.3, 5, False, 0.05),
        (4, 1.0, 10, True, 0.05),
        (2, 0.3, 3, True, 0.05),
        # The live service answers a 429 only after its usual latency.
        (8, 3.5, 2, True, 3.5),
    ],
)
def test_a_hidden_throttle_is_found_and_held_just_under(
    readers: int, latency_s: float, burst: int, whole_seconds: bool, throttled_after_s: float
) -> None:
    rate, duration, tail = 0.8, 300.0, 120.0
    outcome = simulate(
        readers=readers,
        rate=rate,
        burst=burst,
        latency_s=latency_s,
        duration_s=duration,
        whole_seconds=whole_seconds,
        tail_s=tail,
        throttled_after_s=throttled_after_s,
    )
    ceiling = burst + rate * duration
    # Slow start meets the throttle with a few requests, not a wave of one per reader (though
    # a round sent before the first 429 came back is refused too); after that, a handful.
    assert outcome.throttled <= 10
    assert outcome.successes >= 0.85 * ceiling
    assert outcome.late_successes >= 0.8 * rate * tail
    assert outcome.final_rate is not None and 0.5 * rate <= outcome.final_rate <= 1.3 * rate


def test_without_a_throttle_the_window_doubles_each_round_trip_up_to_the_readers() -> None:
    clock = FakeClock()
    throttle = FeedThrottle(clock, max_concurrency=8, initial_window=2)
    rounds = []
    for _ in range(4):
        sent = []
        while throttle.try_acquire() == 0.0:
            sent.append(clock.monotonic())
        rounds.append(len(sent))
        clock.advance(1.0)
        for at in sent:
            throttle.on_success(1.0, at)
    assert rounds == [2, 4, 8, 8]
    assert throttle.rate is None and throttle.throttled == 0
    assert throttle.try_acquire() == 0.0  # nothing is paced, only the window counts


def test_the_window_stops_growing_while_latency_is_far_above_its_best() -> None:
    clock = FakeClock()
    throttle = FeedThrottle(clock, max_concurrency=8, initial_window=2)
    for _ in range(3):  # three rounds of one request at 0.5 s set the baseline
        for _ in range(2):
            assert throttle.try_acquire() == 0.0
            throttle.on_success(0.5, clock.monotonic())
    grown = [throttle.try_acquire() for _ in range(8)].count(0.0)
    for _ in range(grown):
        throttle.on_success(2.0, clock.monotonic())  # four times slower: do not grow
    assert [throttle.try_acquire() for _ in range(9)].count(0.0) == grown


def test_first_429_rate_is_between_the_refused_round_and_the_clean_one_before_it() -> None:
    clock = FakeClock()
    throttle = FeedThrottle(clock, max_concurrency=8, initial_window=4)
    sent = [throttle.acquire() for _ in range(4)]
    clock.advance(2.0)
    for at in sent:
        throttle.on_success(2.0, at)
    sent = [throttle.acquire() for _ in range(8)]  # 8 in flight at 2 s each: 4 requests/s
    clock.advance(2.0)
    throttle.on_throttled(1.0, sent[-1])
    # 4 in flight was clean (2/s), 8 was refused (4/s): the geometric mean is 2.83/s.
    assert throttle.rate == pytest.approx(8 / 2.0 / 2**0.5)


def test_refused_again_before_anything_is_measured_cuts_hard() -> None:
    clock = FakeClock()
    throttle = FeedThrottle(clock, max_concurrency=8, initial_window=8)
    sent = [throttle.acquire() for _ in range(8)]
    clock.advance(0.5)
    throttle.on_throttled(1.0, sent[0])
    first = throttle.rate
    assert first is not None
    clock.advance(1.0)
    later = throttle.acquire()
    clock.advance(0.5)
    throttle.on_throttled(1.0, later)
    assert throttle.rate == pytest.approx(first * 0.6)


def test_first_429_pauses_everyone_then_paces() -> None:
    clock = FakeClock()
    throttle = FeedThrottle(clock, max_concurrency=8, initial_window=1)
    for _ in range(20):  # one request at a time, 0.5 s each: 2 per second
        sent = throttle.acquire()
        clock.advance(0.5)
        throttle.on_success(0.5, sent)
    sent = throttle.acquire()
    throttle.on_throttled(3.0, sent)
    rate = throttle.rate
    assert rate is not None
    # 1 in flight at 0.5 s would say 1.41/s, but "retry after 3 s" (at least 2 s, as whole
    # seconds are rounded up) says the service earns a request no faster than every 2 s.
    assert rate == pytest.approx(0.5)
    assert throttle.try_acquire() == pytest.approx(3.0)
    clock.advance(3.0)
    assert throttle.try_acquire() == 0.0
    assert throttle.try_acquire() == pytest.approx(1 / rate)


def test_429s_for_requests_sent_before_the_cut_do_not_cut_again() -> None:
    clock = FakeClock()
    throttle = FeedThrottle(clock, max_concurrency=8, initial_window=8)
    sent = [throttle.acquire() for _ in range(4)]
    clock.advance(0.1)
    throttle.on_throttled(2.0, sent[0])
    first = throttle.rate
    for old in sent[1:]:
        throttle.on_throttled(2.0, old)
    assert throttle.rate == first
    assert throttle.throttled == 4
    clock.advance(2.0)
    later = throttle.acquire()
    clock.advance(0.1)
    throttle.on_throttled(2.0, later)
    # Refused again, at the new rate, before anything could be measured: a real cut.
    assert first is not None and throttle.rate == pytest.approx(first * 0.6)


def test_rate_grows_while_clean_and_shrinks_when_latency_doubles() -> None:
    clock = FakeClock()
    throttle = FeedThrottle(clock, max_concurrency=8)
    for _ in range(6):  # one request at a time, 2 s each
        sent = throttle.acquire()
        clock.advance(2.0)
        throttle.on_success(2.0, sent)
    throttle.on_throttled(1.0, throttle.acquire())
    start = throttle.rate
    assert start is not None and start < 1.0
    # A reader keeps asking every second for a clean minute, often held by the pacer.
    for _ in range(60):
        clock.advance(1.0)
        if throttle.try_acquire() == 0.0:
            throttle.release()
    grown = throttle.rate
    assert grown is not None and grown > start
    # Then the service slows down sharply: back off.
    clock.advance(10.0)
    for _ in range(9):
        throttle.on_success(5.0, clock.monotonic() - 5.0)
    assert throttle.rate is not None and throttle.rate < grown
