"""What a hidden token bucket accepts per second, measured from the answers it gave."""

from __future__ import annotations

import bisect
from dataclasses import dataclass

MIN_SPAN_S = 4.0  # a measurement spans at least this long
MIN_ACCEPTED = 3  # and counts at least this many accepted requests
MAX_MARKS = 48  # refusals remembered
MAX_KEPT = 4096  # requests remembered (over an hour at 0.8 per second)
NEAR_BEST = 0.97  # a stretch whose bound is this close to the best one is about as good


@dataclass(frozen=True)
class Stretch:
    """What one stretch between two refusals says about the rate."""

    lower: float  # the rate is at least this
    estimate: float  # and about this, unless the bucket overflowed
    span_s: float


class AcceptedRate:
    """The service's refill rate, measured from requests accepted between refusals.

    A refusal means the bucket held less than one token when the request reached it, and a
    refusal takes no token. So between two refusals the bucket earned what it accepted in
    between, plus what it held at the second less what it held at the first, plus whatever
    it lost while full (if the client sent too little for a while). Counting the accepted
    requests therefore gives a lower bound on the rate that nothing can push too high, and
    Retry-After (whole seconds until the next token) bounds what the bucket held at each
    refusal. Over every pair of remembered refusals, the best stretch is the longest of those
    whose bound is near the highest: a stretch in which the client kept the bucket busy gives a
    bound close to the rate, one in which the bucket overflowed only a lower one, and the
    longest of the good ones counts the most requests, so one request more or less matters
    least.

    Times are when each request was sent: the service checks its bucket somewhere on the way,
    at the same point for an accepted request as for a refused one (a refusal may come back
    sooner, so the answer's time would mislead), and that point is the send time plus a delay
    that varies by at most the latency's spread (`spread_s`): accepted requests sent that close
    to either refusal are not counted as certain. `restart` forgets everything (the service
    refused a pace it had been measured to accept: its rate may have changed).
    """

    def __init__(self, min_span_s: float = MIN_SPAN_S, min_accepted: int = MIN_ACCEPTED) -> None:
        self._min_span = min_span_s
        self._min_accepted = min_accepted
        self._accepted: list[float] = []  # send times, in order
        self._marks: list[tuple[float, float]] = []  # refusals: (send time, Retry-After)
        self._counted = 0  # marks whose stretches have been counted
        self.best: Stretch | None = None
        self.spread_s = 0.0  # how much round trips differ: set by the owner as it learns

    @property
    def estimate(self) -> float | None:
        """Requests per second the service accepts, or None before a measurement."""
        return self.best.estimate if self.best is not None else None

    @property
    def span_s(self) -> float:
        """How long the stretch behind the estimate was (0.0 before there is one)."""
        return self.best.span_s if self.best is not None else 0.0

    def accepted(self, at: float) -> None:
        """A request sent at `at` was accepted."""
        _keep(self._accepted, at)

    def refused(self, at: float, retry_after: float | None, answered_before: float) -> None:
        """A request sent at `at` was refused (429). Every request sent before
        `answered_before` has been answered (a refusal may come back before requests sent
        earlier are accepted: a stretch ending there is counted once they are)."""
        bisect.insort(self._marks, (at, retry_after if retry_after is not None else -1.0))
        del self._marks[:-MAX_MARKS]
        self._counted = -1
        self.answered(answered_before)

    def answered(self, before: float) -> None:
        """Every request sent before `before` has been answered: measure again if that
        completes a stretch not yet counted."""
        complete = bisect.bisect_right(self._marks, (before, float("inf")))
        if complete <= self._counted:
            return
        self._counted = complete
        stretches = [
            found
            for i, (start, after_start) in enumerate(self._marks[:complete])
            for end, after_end in self._marks[i + 1 : complete]
            if (found := self._stretch(start, after_start, end, after_end)) is not None
        ]
        if stretches:
            # The longest of the stretches whose bound is about the best: the best bound alone
            # would favour a short stretch that happened to count one request more.
            top = max(found.lower for found in stretches)
            near = [found for found in stretches if found.lower >= NEAR_BEST * top]
            self.best = max(near, key=lambda found: found.span_s)

    def restart(self) -> None:
        """Forget the refusals and the estimate: the next measurement starts afresh."""
        self._marks.clear()
        self._counted = 0
        self.best = None

    def _stretch(
        self, start: float, after_start: float, end: float, after_end: float
    ) -> Stretch | None:
        span = end - start
        count = _between(self._accepted, start, end)
        if span < self._min_span or count < self._min_accepted:
            return None
        unsure = self.spread_s  # accepted this close to a refusal may lie either side
        sure = _between(self._accepted, start + unsure, end - unsure)
        rate = self.estimate if self.estimate is not None else count / span
        for _ in range(2):  # what the bucket held depends on the rate; two rounds settle it
            low_a, high_a = _held(after_start, rate)
            low_b, high_b = _held(after_end, rate)
            rate = max(count + (low_b + high_b - low_a - high_a) / 2.0, 1.0) / span
        lower = max(sure + low_b - high_a, 0.0) / span
        return Stretch(lower, max(rate, lower), span)


def _keep(times: list[float], at: float) -> None:
    bisect.insort(times, at)
    if len(times) > MAX_KEPT:
        del times[: MAX_KEPT // 4]


def _between(times: list[float], start: float, end: float) -> int:
    """How many of `times` lie in (start, end]."""
    return bisect.bisect_right(times, end) - bisect.bisect_right(times, start)


def _held(retry_after: float, rate: float) -> tuple[float, float]:
    """Between how much of a token the bucket held at a refusal, from its Retry-After: the
    next token was between `retry_after - 1` and `retry_after` seconds away (whole seconds,
    rounded up), so the bucket held between 1 - rate x retry_after and 1 - rate x (retry_after
    - 1) of one. Without a usable Retry-After, anything below one."""
    if retry_after <= 0 or not float(retry_after).is_integer():
        return 0.0, 1.0
    high = min(1.0, max(0.0, 1.0 - rate * (retry_after - 1.0)))
    low = min(high, max(0.0, 1.0 - rate * retry_after))
    return low, high
