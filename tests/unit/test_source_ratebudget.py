"""RateBudget: the standard endpoint's window, learned from headers and shared by all readers."""

from __future__ import annotations

import threading

import pytest

from datasync_cli.clock import FakeClock
from datasync_cli.source import RateBudget, StopRequestedError
from datasync_cli.source.ratebudget import DEFAULT_MARGIN_S


def _window(limit: int, remaining: int, reset: float | str) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": str(reset),
    }


def test_one_request_at_a_time_until_the_headers_are_known() -> None:
    budget = RateBudget(FakeClock())
    assert budget.try_acquire() == 0.0
    assert budget.try_acquire() > 0.0  # the first is still out
    budget.observe(_window(10, 9, 60))
    granted = [budget.try_acquire() for _ in range(9)]
    assert granted == [0.0] * 9  # a burst is fine while slots remain
    assert budget.try_acquire() == pytest.approx(60 + DEFAULT_MARGIN_S)


def test_an_exhausted_window_waits_for_its_reset_then_refills() -> None:
    clock = FakeClock()
    budget = RateBudget(clock)
    budget.acquire()
    budget.observe(_window(10, 0, 46))
    budget.acquire()
    assert clock.sleeps == [pytest.approx(46 + DEFAULT_MARGIN_S)]
    assert budget.waited_s == pytest.approx(46 + DEFAULT_MARGIN_S)
    # A new window: the remaining nine go out without waiting.
    for _ in range(9):
        assert budget.try_acquire() == 0.0
    assert budget.remaining == 0


def test_reset_given_as_an_epoch_is_understood() -> None:
    clock = FakeClock()
    budget = RateBudget(clock)
    budget.acquire()
    budget.observe(_window(10, 0, int(clock.wall()) + 20))
    assert budget.try_acquire() == pytest.approx(20 + DEFAULT_MARGIN_S, abs=1.0)


def test_responses_out_of_order_keep_the_lowest_remaining() -> None:
    budget = RateBudget(FakeClock())
    budget.acquire()
    budget.observe(_window(10, 5, 60))
    assert budget.try_acquire() == 0.0
    assert budget.try_acquire() == 0.0
    # Someone else used the key too: the server has 2 left and one of ours is still out.
    budget.observe(_window(10, 2, 59))
    assert budget.remaining == 1
    assert budget.try_acquire() == 0.0
    assert budget.try_acquire() > 0.0


def test_a_429_pauses_every_reader() -> None:
    clock = FakeClock()
    budget = RateBudget(clock)
    budget.acquire()
    budget.observe(_window(10, 8, 60))
    budget.pause(30.0)
    assert budget.throttled == 1
    waits = [budget.try_acquire() for _ in range(3)]
    assert waits == [pytest.approx(30.0)] * 3
    assert budget.waited_s == pytest.approx(30.0)  # overlapping waits count once


def test_failed_requests_give_their_slot_back_for_learning() -> None:
    budget = RateBudget(FakeClock())
    assert budget.try_acquire() == 0.0
    budget.observe({})  # the request failed without an answer
    assert budget.try_acquire() == 0.0


def test_slots_are_never_granted_twice_across_threads() -> None:
    budget = RateBudget(FakeClock())
    budget.acquire()
    budget.observe(_window(100, 50, 600))
    granted: list[float] = []
    lock = threading.Lock()

    def take() -> None:
        for _ in range(20):
            wait = budget.try_acquire()
            with lock:
                granted.append(wait)

    threads = [threading.Thread(target=take) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert granted.count(0.0) == 50


def test_stop_interrupts_the_wait() -> None:
    clock = FakeClock()
    budget = RateBudget(clock)
    stop = threading.Event()
    budget.acquire(stop)
    budget.observe(_window(10, 0, 60))
    stop.set()
    with pytest.raises(StopRequestedError):
        budget.acquire(stop)
