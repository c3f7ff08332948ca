"""How the feed starts, before any throttle has shown itself."""

from __future__ import annotations

import math
from collections import deque

MAX_ROUNDS = 30.0  # growth beyond this many round trips makes no difference


class Opening:
    """The feed's first requests: a burst, then a pace that grows each round trip.

    `initial` requests go at once (a throttle's bucket is full at the start, and an empty
    round trip would let it overflow); after that requests are spread over the round trip,
    `initial + 1` per round trip at first and `growth` times more each round trip after.
    How many may be in flight starts at `initial` (twice that once a round trip is known) and
    grows by `growth - 1` per clean answer, so a service that answers nothing gets no more
    requests than that. Spreading the requests matters: requests sent in
    waves arrive in waves, which a bucket refuses, and leave gaps in which it overflows.

    It also remembers the pace each request went at (requests in flight over the round trip,
    by Little's law), from which the first refusal sets the pace.
    """

    def __init__(self, initial: int, growth: float, max_in_flight: int) -> None:
        self._initial = max(1, initial)
        self._growth = growth
        self._max = max(1, max_in_flight)
        self.window = float(min(self._max, self._initial))
        self._opened_at: float | None = None
        self._sent = 0
        self._paces: deque[tuple[float, float]] = deque(maxlen=4 * self._max)

    def expect_round_trip(self) -> None:
        """A round trip is known before the feed answered: room for a round trip's pace."""
        self.window = max(self.window, float(min(self._max, 2 * self._initial)))

    def answered(self) -> None:
        """A clean answer: one more may be in flight, up to growth per round trip."""
        self.window = min(float(self._max), self.window + self._growth - 1.0)

    def sent(self, now: float, in_flight: int, latency: float) -> None:
        if self._opened_at is None:
            self._opened_at = now
        self._sent += 1
        self._paces.append((now, in_flight / latency if latency > 0 else 0.0))

    def interval(self, now: float, latency: float) -> float:
        """Seconds until the next request after one sent `now`."""
        if latency <= 0 or self._opened_at is None or self._sent < self._initial:
            return 0.0  # the first requests go at once
        rounds = min((now - self._opened_at) / latency, MAX_ROUNDS)
        return latency / (self._initial + 1) / math.pow(self._growth, rounds)

    def pace_at(self, sent_at: float | None) -> float:
        """Requests per second at the time the request sent at `sent_at` went out."""
        if not self._paces:
            return 0.0
        if sent_at is None:
            return self._paces[-1][1]
        found = self._paces[0][1]
        for at, pace in self._paces:
            if at > sent_at:
                break
            found = pace
        return found
