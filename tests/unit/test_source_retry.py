"""RetryPolicy: backoff with full jitter on the fake clock, 429s apart, bounded, interruptible."""

from __future__ import annotations

import threading
from collections.abc import Callable
from itertools import cycle

import pytest

from datasync_cli.clock import FakeClock
from datasync_cli.errors import FatalSourceError, RetriableSourceError
from datasync_cli.source import RateLimitedError, RetryPolicy, StopRequestedError
from datasync_cli.source.errors import CursorExpiredError


def _failing(errors: list[Exception], result: str = "ok") -> Callable[[], str]:
    pending = list(errors)

    def call() -> str:
        if pending:
            raise pending.pop(0)
        return result

    return call


def test_backoff_is_exponential_capped_and_jittered() -> None:
    clock = FakeClock()
    jitter = cycle([1.0, 0.5])
    policy = RetryPolicy(clock, max_attempts=10, rand=lambda: next(jitter))
    fn = _failing([RetriableSourceError("503")] * 8)
    assert policy.call(fn, endpoint="the events endpoint") == "ok"
    # Ceilings 0.5, 1, 2, 4, 8, 16, 30 (capped), 30; every second one halved by the jitter.
    assert clock.sleeps == [0.5, 0.5, 2.0, 2.0, 8.0, 8.0, 30.0, 15.0]
    assert policy.retries == 8


def test_gives_up_after_max_attempts_with_a_clear_message() -> None:
    clock = FakeClock()
    policy = RetryPolicy(clock, max_attempts=4, rand=lambda: 1.0)
    calls = 0

    def always_failing() -> str:
        nonlocal calls
        calls += 1
        raise RetriableSourceError("GET /events: HTTP 502 BAD_GATEWAY")

    with pytest.raises(FatalSourceError) as caught:
        policy.call(always_failing, endpoint="the events endpoint")
    assert calls == 4
    assert len(clock.sleeps) == 3
    text = str(caught.value)
    assert "giving up on the events endpoint after 4 attempts" in text
    assert "HTTP 502" in text and "resumes from its checkpoint" in text


def test_429_waits_retry_after_and_counts_apart() -> None:
    clock = FakeClock()
    policy = RetryPolicy(clock, max_attempts=2, rand=lambda: 1.0)
    fn = _failing([RateLimitedError("429", retry_after=46.0)] * 5 + [RetriableSourceError("500")])
    assert policy.call(fn, endpoint="x") == "ok"
    assert clock.sleeps == [46.0] * 5 + [0.5]
    assert policy.throttled == 5 and policy.retries == 1


def test_429_without_retry_after_backs_off_and_has_its_own_cap() -> None:
    clock = FakeClock()
    policy = RetryPolicy(clock, max_throttled=3, rand=lambda: 1.0)
    with pytest.raises(FatalSourceError) as caught:
        policy.call(_failing([RateLimitedError("429")] * 9), endpoint="the feed")
    assert clock.sleeps == [0.5, 1.0]
    assert "after 3 attempts" in str(caught.value)


def test_non_retriable_errors_pass_through_at_once() -> None:
    clock = FakeClock()
    policy = RetryPolicy(clock)
    with pytest.raises(CursorExpiredError):
        policy.call(_failing([CursorExpiredError("expired")]), endpoint="x")
    assert clock.sleeps == []


def test_stop_interrupts_the_wait() -> None:
    clock = FakeClock()
    stop = threading.Event()
    policy = RetryPolicy(clock, stop, rand=lambda: 1.0)

    def fail_then_stop() -> str:
        stop.set()
        raise RetriableSourceError("503")

    with pytest.raises(StopRequestedError):
        policy.call(fail_then_stop, endpoint="x")
    with pytest.raises(StopRequestedError):
        policy.call(lambda: "never", endpoint="x")
