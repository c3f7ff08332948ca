"""FeedThrottle against a simulated token-bucket server on the fake clock."""

from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass, field

import pytest

from datasync_cli.clock import FakeClock
from datasync_cli.source import FeedThrottle
from datasync_cli.source.feedline import WaitingLine
from datasync_cli.source.feedthrottle import POLL_S


@dataclass
class Outcome:
    successes: int
    throttled: int
    late_successes: int  # during the last `tail_s` seconds
    final_rate: float | None
    first_throttled_at: float | None = None
    paces: list[tuple[float, float]] = field(default_factory=list)  # (time, pace) once set
    accepted_at: list[float] = field(default_factory=list)


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
    rate_change: tuple[float, float] | None = None,
    checked_at_end: bool = False,
    jitter_s: float = 0.0,
) -> Outcome:
    """Readers looping on a server whose hidden throttle is a token bucket; events in time order.

    The bucket is checked when a request arrives, or with `checked_at_end` after its latency
    (plus up to `jitter_s`), just before the answer, as the project's simulator does. Every
    send is checked against what the readers were told: none while a Retry-After that has come
    back still holds, and once paced none closer than the pace allows (so no two readers spend
    the same refusal). `rate_change` is (when, new rate)."""
    clock = FakeClock(start=0.0)
    throttle = FeedThrottle(clock, readers)
    jitter = random.Random(1)
    tokens, refilled_at = float(burst), 0.0
    queue: list[tuple[float, int, str, float, float]] = [
        (0.0, n, "try", 0.0, 0.0) for n in range(readers)
    ]
    successes = throttled = late = 0
    told_until = 0.0  # the latest end of a Retry-After that has come back
    last_send: tuple[float, float | None] = (float("-inf"), None)  # (when, pace then)
    outcome = Outcome(0, 0, 0, None)
    while queue:
        at, reader, kind, sent_at, retry_after = heapq.heappop(queue)
        if at > duration_s:
            break
        clock.advance(max(0.0, at - clock.monotonic()))
        now = clock.monotonic()
        if rate_change is not None and now >= rate_change[0]:
            tokens, refilled_at = min(burst, tokens + (now - refilled_at) * rate), now
            rate, rate_change = rate_change[1], None
        if kind == "try":
            wait = throttle.try_acquire()
            if wait > 0:
                heapq.heappush(queue, (now + wait, reader, "try", 0.0, 0.0))
                continue
            assert now >= told_until, "sent while a Retry-After held"
            previous, pace = last_send
            assert pace is None or now - previous >= 1 / pace - 1e-9, "sent inside the pace"
            last_send = (now, throttle.rate)
            if throttle.rate is not None:
                outcome.paces.append((now, throttle.rate))
            if checked_at_end:
                delay = latency_s + jitter.uniform(0.0, jitter_s)
                heapq.heappush(queue, (now + delay, reader, "check", now, 0.0))
                continue
            sent_at, kind = now, "check"
        if kind == "check":
            tokens, refilled_at = min(burst, tokens + (now - refilled_at) * rate), now
            answer = 0.01 if checked_at_end else latency_s
            if tokens >= 1:
                tokens -= 1
                heapq.heappush(queue, (now + answer, reader, "ok", sent_at, 0.0))
            else:
                after = (1 - tokens) / rate
                after = math.ceil(after) if whole_seconds else after
                answer = 0.01 if checked_at_end else throttled_after_s
                heapq.heappush(queue, (now + answer, reader, "429", sent_at, after))
        if kind == "ok":
            successes += 1
            outcome.accepted_at.append(now)
            late += now > duration_s - tail_s
            throttle.on_success(now - sent_at, sent_at)
            heapq.heappush(queue, (now, reader, "try", 0.0, 0.0))
        elif kind == "429":
            throttled += 1
            if outcome.first_throttled_at is None:
                outcome.first_throttled_at = now
            told_until = max(told_until, now + retry_after)
            throttle.on_throttled(retry_after, sent_at)
            heapq.heappush(queue, (now, reader, "try", 0.0, 0.0))
    assert throttled == throttle.throttled
    outcome.successes, outcome.throttled, outcome.late_successes = successes, throttled, late
    outcome.final_rate = throttle.rate
    return outcome


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
        # The benchmark's throttle: a burst of 2, Retry-After in whole seconds.
        (8, 3.5, 2, True, 0.05),
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
    # The opening meets the throttle with a few requests, not a wave of one per reader (though
    # requests already on their way when the first 429 comes back may be refused too); after
    # that, a handful.
    assert outcome.throttled <= 10
    assert outcome.successes >= 0.85 * ceiling
    assert outcome.late_successes >= 0.8 * rate * tail
    assert outcome.final_rate is not None and 0.5 * rate <= outcome.final_rate <= 1.3 * rate


@pytest.mark.parametrize(
    ("burst", "checked_at_end", "throttled_after_s"),
    [(2, True, 0.0), (4, True, 0.0), (2, False, 0.05), (2, False, 3.5), (4, False, 0.05)],
)
def test_after_the_first_refusal_the_pace_is_at_the_ceiling_within_a_few_round_trips(
    burst: int, checked_at_end: bool, throttled_after_s: float
) -> None:
    rate, latency, duration = 0.8, 3.5, 300.0
    outcome = simulate(
        readers=8, rate=rate, burst=burst, latency_s=latency, whole_seconds=True,
        duration_s=duration, throttled_after_s=throttled_after_s, checked_at_end=checked_at_end,
        jitter_s=0.35 if checked_at_end else 0.0,
    )
    assert outcome.first_throttled_at is not None
    settled = outcome.first_throttled_at + 4 * latency
    accepted = sum(1 for at in outcome.accepted_at if at >= settled)
    paces = [pace for at, pace in outcome.paces if at >= settled]
    # From four round trips after the first 429 on, the service accepts as much as it allows
    # (a pace under its rate would lose the difference for good) and the pace is only a
    # little over it (which costs an occasional 429, nothing else).
    assert accepted >= 0.97 * rate * (duration - settled)
    assert sum(paces) / len(paces) <= 1.06 * rate
    assert outcome.throttled <= 10


def test_a_service_that_lowers_its_limit_is_followed_down() -> None:
    rate, new_rate, tail = 0.8, 0.5, 120.0
    outcome = simulate(
        readers=8, rate=rate, burst=2, latency_s=3.5, whole_seconds=True, duration_s=400.0,
        tail_s=tail, rate_change=(150.0, new_rate),
    )
    assert outcome.late_successes >= 0.85 * new_rate * tail
    assert outcome.final_rate is not None and outcome.final_rate <= 1.1 * new_rate
    assert outcome.throttled <= 20


def test_without_a_throttle_in_flight_grows_to_the_readers_spread_over_each_round_trip() -> None:
    clock = FakeClock(start=0.0)
    throttle = FeedThrottle(clock, max_concurrency=8, initial_window=2)
    throttle.expect_latency(1.0)  # the first page's round trip
    flying: list[float] = []
    sends: list[float] = []
    while clock.monotonic() < 12.0:
        now = clock.monotonic()
        for sent in [at for at in flying if at + 1.0 <= now]:
            flying.remove(sent)
            throttle.on_success(1.0, sent)
        while throttle.try_acquire() == 0.0:
            flying.append(now)
            sends.append(now)
        clock.advance(0.01)
    first_round = [at for at in sends if at < 1.0]
    # Two at once (a bucket that is full allows a burst), then spread over the round trip.
    assert first_round[:2] == [sends[0], sends[0]]
    assert len(set(first_round)) == len(first_round) - 1
    assert throttle.rate is None and throttle.throttled == 0
    assert max(sum(1 for at in sends if t - 1.0 < at <= t) for t in sends) == 8
    assert sum(1 for at in sends if 11.0 < at <= 12.0) >= 8  # full speed within a few rounds


def _fill(clock: FakeClock, throttle: FeedThrottle) -> list[float]:
    """Send, waiting out every pacing interval, until the opening's window is full."""
    sent: list[float] = []
    while (wait := throttle.try_acquire()) != POLL_S:
        if wait == 0.0:
            sent.append(clock.monotonic())
        clock.advance(wait)
    return sent


def test_the_opening_stops_growing_while_latency_is_far_above_its_best() -> None:
    clock = FakeClock()
    throttle = FeedThrottle(clock, max_concurrency=8, initial_window=2)
    for _ in range(5):  # five round trips at 0.5 s set the best
        sent = throttle.acquire()
        clock.advance(0.5)
        throttle.on_success(0.5, sent)
    slow = _fill(clock, throttle)
    for at in slow:
        throttle.on_success(2.0, at)  # four times slower than the best: do not grow
    assert len(_fill(clock, throttle)) == len(slow)


def _paced(clock: FakeClock, latency: float, window: int) -> FeedThrottle:
    """A throttle that has opened: `window` requests in flight at `latency` s each."""
    throttle = FeedThrottle(clock, max_concurrency=8, initial_window=window)
    throttle.expect_latency(latency)
    sent = [throttle.acquire() for _ in range(window)]
    clock.advance(latency - (clock.monotonic() - sent[0]))
    for at in sent:
        throttle.on_success(latency, at)
    return throttle


def test_the_first_refusal_sets_the_pace_its_request_went_at() -> None:
    clock = FakeClock()
    throttle = _paced(clock, 2.0, 4)
    sent = [throttle.acquire() for _ in range(4)]  # spread: about 4 in flight at 2 s each
    clock.advance(2.0)
    throttle.on_throttled(1.0, sent[-1])
    # By Little's law, requests in flight over the latency is the rate they were sent at.
    assert throttle.rate == pytest.approx(4 / 2.0)


def test_a_refusal_in_the_opening_burst_does_not_set_a_pace() -> None:
    clock = FakeClock()
    throttle = FeedThrottle(clock, max_concurrency=8, initial_window=2)
    sent = [throttle.acquire() for _ in range(2)]
    clock.advance(0.1)
    throttle.on_throttled(1.0, sent[1])  # nothing was known about the round trip yet
    assert throttle.rate is None and throttle.throttled == 1
    assert throttle.try_acquire() == pytest.approx(1.0)  # but the pause holds


def test_refused_again_before_anything_is_measured_cuts_hard() -> None:
    clock = FakeClock()
    throttle = _paced(clock, 0.5, 8)
    sent = [throttle.acquire() for _ in range(8)]
    clock.advance(0.1)
    throttle.on_throttled(1.0, sent[-1])
    first = throttle.rate
    assert first is not None
    clock.advance(1.0)
    later = throttle.acquire()
    clock.advance(0.1)
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
    # 1 in flight at 0.5 s would say 2/s, but "retry after 3 s" (at least 2 s, as whole
    # seconds are rounded up) says the service earns a request no faster than every 2 s.
    assert rate == pytest.approx(0.5)
    assert throttle.try_acquire() == pytest.approx(3.0)
    clock.advance(3.0)
    assert throttle.try_acquire() == 0.0
    assert throttle.try_acquire() == pytest.approx(1 / rate)  # no two spend one refusal


def test_429s_for_requests_sent_before_the_cut_do_not_cut_again() -> None:
    clock = FakeClock()
    throttle = _paced(clock, 0.5, 8)
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
            throttle.release(clock.monotonic())
    grown = throttle.rate
    assert grown is not None and grown > start
    # Then the service slows down sharply: back off.
    clock.advance(10.0)
    for _ in range(9):
        throttle.on_success(5.0, clock.monotonic() - 5.0)
    assert throttle.rate is not None and throttle.rate < grown


def test_the_reader_whose_range_has_most_left_goes_first() -> None:
    clock = FakeClock()
    throttle = _paced(clock, 1.0, 1)
    throttle.on_throttled(1.0, throttle.acquire())  # paced from here on
    clock.advance(1.0)
    small, large, also_large = throttle.enqueue(2.0), throttle.enqueue(9.0), throttle.enqueue(9.0)
    assert throttle.try_acquire(small) > 0.0  # the slot is free, but not for it
    assert throttle.try_acquire(also_large) > 0.0  # a tie goes to the earlier one
    assert throttle.try_acquire(large) == 0.0
    throttle.cancel(large)
    clock.advance(5.0)
    assert throttle.try_acquire(also_large) == 0.0
    assert not WaitingLine().first(0)  # a ticket not in line is never first
