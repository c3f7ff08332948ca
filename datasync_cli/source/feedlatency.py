"""How long feed requests take: the pacer's unit of time."""

from __future__ import annotations

import statistics
from collections import deque

KEPT = 9  # round trips remembered
SETTLED = 5  # round trips before the best one counts


class RoundTrips:
    """Recent feed round trips: their median, the best median seen, and their spread.

    A refusal for a pace shows up one round trip after the pace was tried, so the pacer
    changes pace at most once per round trip. Until the feed has answered, a round trip
    measured elsewhere (the run's first page, from the standard endpoint) stands in.
    """

    def __init__(self, factor: float = 2.0) -> None:
        self._factor = factor
        self._recent: deque[float] = deque(maxlen=KEPT)
        self._best: float | None = None
        self._expected = 0.0

    @property
    def known(self) -> bool:
        """Whether the feed itself has answered."""
        return bool(self._recent)

    def expect(self, seconds: float) -> None:
        """A round trip measured elsewhere, used until the feed answers."""
        if seconds > 0:
            self._expected = seconds

    def add(self, seconds: float) -> None:
        self._recent.append(seconds)
        if len(self._recent) >= SETTLED:
            median = statistics.median(self._recent)
            if self._best is None or median < self._best:
                self._best = median

    def median(self) -> float:
        """The typical round trip (0.0 while nothing is known)."""
        return float(statistics.median(self._recent)) if self._recent else self._expected

    def spread(self) -> float:
        """How much recent round trips differ (longest less shortest)."""
        return max(self._recent) - min(self._recent) if self._recent else 0.0

    def near_best(self, seconds: float) -> bool:
        """Whether a round trip is within `factor` of the best: a sharp rise in latency is a
        service (or a throttle) struggling."""
        return self._best is None or seconds <= self._factor * self._best

    def struggling(self) -> bool:
        """Whether the recent median is far above the best (once enough are known)."""
        if len(self._recent) < SETTLED or self._best is None:
            return False
        return statistics.median(self._recent) > self._factor * self._best

    def forget(self) -> None:
        """Drop the recent round trips (after the pace was cut for them)."""
        self._recent.clear()
