"""AcceptedRate: the service's refill rate from what it accepted between refusals."""

from __future__ import annotations

import math

import pytest

from datasync_cli.source.feedrate import AcceptedRate


def _feed(measure: AcceptedRate, sends: list[float], rate: float, burst: float = 2.0) -> None:
    """Requests sent at `sends` to a token bucket checked on arrival; every answer told."""
    tokens, seen = burst, 0.0
    for at in sends:
        tokens, seen = min(burst, tokens + (at - seen) * rate), at
        if tokens >= 1.0:
            tokens -= 1.0
            measure.accepted(at)
        else:
            measure.refused(at, math.ceil((1.0 - tokens) / rate), answered_before=at)


def test_a_busy_bucket_is_measured_at_its_rate() -> None:
    measure = AcceptedRate()
    # 1.1 requests per second against 0.8: the bucket is empty, and refuses now and then.
    _feed(measure, [i / 1.1 for i in range(1, 120)], rate=0.8)
    assert measure.estimate == pytest.approx(0.8, rel=0.03)
    assert measure.best is not None and measure.best.lower <= 0.8


def test_a_stretch_in_which_the_bucket_overflowed_only_bounds_the_rate_from_below() -> None:
    measure = AcceptedRate()
    # Busy for 40 s, then idle for 30 s (the bucket fills and overflows), then busy again.
    sends = [i / 1.1 for i in range(1, 45)] + [70 + i / 1.1 for i in range(1, 60)]
    _feed(measure, sends, rate=0.8)
    assert measure.best is not None
    assert measure.best.lower <= 0.8
    # The best stretch is a busy one, not one spanning the idle gap.
    assert measure.estimate == pytest.approx(0.8, rel=0.05)


def test_nothing_is_measured_from_a_single_refusal_or_too_short_a_stretch() -> None:
    measure = AcceptedRate()
    _feed(measure, [0.1 * i for i in range(1, 20)], rate=0.8)  # two seconds of refusals
    assert measure.estimate is None


def test_a_stretch_is_counted_only_once_the_requests_sent_before_its_end_are_answered() -> None:
    measure = AcceptedRate()
    measure.refused(0.0, 1, answered_before=0.0)
    measure.refused(10.0, 1, answered_before=2.0)  # requests sent at 2-10 s still in flight
    assert measure.estimate is None
    for at in range(2, 10):
        measure.accepted(float(at))
    measure.answered(before=10.5)
    assert measure.estimate is not None and 0.7 <= measure.estimate <= 0.9


def test_restart_forgets_everything() -> None:
    measure = AcceptedRate()
    _feed(measure, [i / 1.1 for i in range(1, 60)], rate=0.8)
    assert measure.estimate is not None
    measure.restart()
    assert measure.estimate is None and measure.span_s == 0.0
