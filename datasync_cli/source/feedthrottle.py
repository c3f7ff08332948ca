"""An adaptive limiter for the feed, which advertises no limit but may hide a throttle."""

from __future__ import annotations

import math
import statistics
import threading
from collections import deque

from ..clock import Clock
from ..settings import DEFAULTS
from .errors import StopRequestedError, bounded_wait

POLL_S = 0.05
QUICK_BACKOFF = 0.6
CREEP_SLOWER = 3.0  # above the last measured ceiling, grow this many times more slowly
MEASURE_MIN_SAMPLES = 5
MEASURE_MIN_SPAN_S = 5.0
CEILING_SAMPLES = 10  # successes needed before a measurement counts as the ceiling


class FeedThrottle:
    """Shared by every feed reader: a growing concurrency window until the first 429, then a
    rate held just under the ceiling.

    Until the service refuses anything, the number of requests in flight starts at
    `initial_window` and grows by one per clean answer (it doubles every round trip, as long as
    latency stays near its best), up to `max_concurrency`; a service with no throttle is at full
    speed after a few round trips, and a hidden one is met by a few requests, not by a wave.

    The first 429 sets a rate halfway (geometrically) between the refused round and the clean
    one before it, no faster than Retry-After allows. The rate then rises one step per round
    trip until the next 429, which steps it back; from then on each 429 sets it just under the
    rate the service was measured to accept since the episode's first refusal, and the rate
    grows slowly while requests stay clean (more slowly still above that measured ceiling).
    A sharp rise in latency also cuts it. 429s for requests sent before the last cut are not
    counted twice. Thread-safe; waiting goes through the Clock.
    """

    def __init__(
        self,
        clock: Clock,
        max_concurrency: int,
        *,
        initial_window: int = 2,
        headroom: float = 0.95,
        backoff: float = 0.9,
        increase_every_s: float = 10.0,
        probe_increase: float = 1.25,
        steady_increase: float = 1.03,
        latency_factor: float = 2.0,
        episode_gap_s: float = 30.0,
        min_rate: float = 0.05,
        max_wait_s: float = DEFAULTS.max_wait_s,
    ) -> None:
        self._clock = clock
        self._max_concurrency = max(1, max_concurrency)
        self._window = min(self._max_concurrency, max(1, initial_window))
        self._sends: deque[tuple[float, int]] = deque(maxlen=4 * self._max_concurrency)
        self._headroom = headroom
        self._backoff = backoff
        self._increase_every_s = increase_every_s
        self._probe_increase = probe_increase
        self._steady_increase = steady_increase
        self._latency_factor = latency_factor
        self._episode_gap_s = episode_gap_s
        self._min_rate = min_rate
        self._max_wait = max_wait_s
        self._lock = threading.Lock()
        self._rate: float | None = None
        self._next_at = 0.0
        self._paused_until = 0.0
        self._in_flight = 0
        self._latencies: deque[float] = deque(maxlen=9)
        self._baseline: float | None = None
        self._last_change = float("-inf")
        self._last_cut = float("-inf")
        self._last_throttled = float("-inf")
        self._anchor: float | None = None
        self._since_anchor = 0
        self._first_accepted = float("inf")  # send times of this episode's first and last success
        self._last_accepted = float("-inf")
        self._decreases = 0
        self._first_rate = 0.0
        self._ceiling: float | None = None  # the service's rate, as last measured at a 429
        self._pacer_bound = False
        self._throttled = 0
        self._blocked_until = 0.0
        self._waited_s = 0.0

    @property
    def rate(self) -> float | None:
        """Requests per second we hold to, or None while no throttle has shown itself."""
        return self._rate

    @property
    def throttled(self) -> int:
        return self._throttled

    @property
    def waited_s(self) -> float:
        """Wall seconds during which no feed reader could send (overlapping waits count once)."""
        return self._waited_s

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def acquire(self, stop: threading.Event | None = None) -> float:
        """Block until a feed request may be sent; return its send time (monotonic)."""
        while True:
            if stop is not None and stop.is_set():
                raise StopRequestedError()
            wait = self.try_acquire()
            if wait <= 0:
                return self._clock.monotonic()
            bounded_wait(wait, self._max_wait, "the feed")
            if self._clock.sleep(wait, stop):
                raise StopRequestedError()

    def try_acquire(self) -> float:
        """Take a slot and return 0.0, or return how many seconds to wait before asking again."""
        with self._lock:
            now = self._clock.monotonic()
            self._maybe_increase(now)
            if self._paused_until > now:
                return self._block(now, self._paused_until - now)
            cap = self._max_concurrency if self._rate is not None else self._window
            if self._in_flight >= cap:
                return POLL_S
            if self._rate is not None:
                if self._next_at > now:
                    self._pacer_bound = True
                    return self._block(now, self._next_at - now)
                self._next_at = max(self._next_at, now) + 1.0 / self._rate
            self._in_flight += 1
            self._sends.append((now, self._in_flight))
            return 0.0

    def on_success(self, latency_s: float, sent_at: float | None = None) -> None:
        """A feed request succeeded after `latency_s` seconds."""
        with self._lock:
            now = self._clock.monotonic()
            self._in_flight = max(0, self._in_flight - 1)
            sent = sent_at if sent_at is not None else now - latency_s
            if self._anchor is not None and sent >= self._anchor:
                self._since_anchor += 1
                self._first_accepted = min(self._first_accepted, sent)
                self._last_accepted = max(self._last_accepted, sent)
            self._observe_latency(now, latency_s)
            if self._rate is None and self._baseline_holds(latency_s):
                self._window = min(self._max_concurrency, self._window + 1)

    def on_throttled(self, retry_after_s: float | None, sent_at: float | None = None) -> None:
        """A feed request got a 429: everyone pauses, and the rate comes down."""
        with self._lock:
            now = self._clock.monotonic()
            self._in_flight = max(0, self._in_flight - 1)
            self._throttled += 1
            wait = retry_after_s if retry_after_s is not None and retry_after_s > 0 else 1.0
            self._paused_until = max(self._paused_until, now + wait)
            self._next_at = max(self._next_at, self._paused_until)
            if sent_at is not None and sent_at < self._last_cut:
                return  # sent at the old rate; that rate has already been cut
            if self._rate is None:
                self._rate = max(self._min_rate, self._first_estimate(sent_at, wait))
                self._first_rate = self._rate
            else:
                self._rate = max(self._min_rate, self._next_rate(now))
            self._decreases += 1
            if self._anchor is None or now - self._last_throttled > self._episode_gap_s:
                # The refused request found the bucket empty when it was sent: measure from then.
                self._anchor = sent_at if sent_at is not None else now
                self._since_anchor = 0
                self._first_accepted, self._last_accepted = float("inf"), float("-inf")
            self._last_throttled = now
            self._cut(now)

    def _next_rate(self, now: float) -> float:
        """The rate after a 429 for a request sent at the current rate."""
        assert self._rate is not None
        measured = self._measured() if self._decreases > 1 else None
        if measured is not None:
            # Since this episode's first 429 the hidden bucket has stayed near empty, so what
            # the service accepted meanwhile is its rate.
            if self._since_anchor >= CEILING_SAMPLES:
                self._ceiling = measured
            return min(self._rate * self._backoff, self._headroom * measured)
        if self._decreases == 1 and self._rate > self._first_rate:
            # The probe step just taken crossed the ceiling: back to the last one not refused.
            # If that is still too fast, the next 429 comes soon, with a measurement.
            return self._rate / self._probe_increase
        if self._anchor is not None and now - self._last_throttled < self._episode_gap_s:
            # Refused again before anything could be measured: far too fast (a burst made the
            # first rounds look clean).
            return self._rate * QUICK_BACKOFF
        return self._rate * self._backoff

    def release(self) -> None:
        """A feed request ended without an answer that says anything about the throttle."""
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)

    def _first_estimate(self, sent_at: float | None, retry_after: float) -> float:
        """Halfway between the refused round and the clean one before it (half as many in
        flight): by Little's law, requests in flight over the latency is the rate sent at.
        The next 429, if any, corrects it from a measurement with the hidden bucket empty."""
        in_flight = self._in_flight_at(sent_at)
        if not self._latencies or in_flight is None:
            return 1.0 / retry_after
        latency = statistics.median(self._latencies)
        if latency <= 0:
            return 1.0 / retry_after
        estimate = in_flight / latency / math.sqrt(2.0)
        # A bucket that refuses says how long until it earns the next request; that wait is at
        # most one interval of its rate. Whole seconds are rounded up, so allow for that.
        shortest_wait = retry_after - 1.0 if float(retry_after).is_integer() else retry_after
        if shortest_wait > 0:
            estimate = min(estimate, 1.0 / shortest_wait)
        return estimate

    def _in_flight_at(self, sent_at: float | None) -> int | None:
        """How many requests were in flight when the one sent at `sent_at` went out."""
        if not self._sends:
            return None
        if sent_at is None:
            return self._sends[-1][1]
        found = self._sends[0][1]
        for at, n in self._sends:
            if at > sent_at:
                break
            found = n
        return found

    def _baseline_holds(self, latency_s: float) -> bool:
        # A sharp rise in latency is a service (or a throttle) struggling: stop growing.
        return self._baseline is None or latency_s <= self._latency_factor * self._baseline

    def _measured(self) -> float | None:
        """The service's rate as seen since this episode's first 429, or None if too early.

        Since then the hidden bucket has stayed near empty, so each accepted request waited for
        the bucket to earn it: accepted requests were sent about 1/rate apart. Timing them,
        rather than counting them in a window, does not lose a whole request at each end."""
        n = self._since_anchor
        spread = self._last_accepted - self._first_accepted
        if n < MEASURE_MIN_SAMPLES or spread < MEASURE_MIN_SPAN_S:
            return None
        return (n - 1) / spread

    def _observe_latency(self, now: float, latency_s: float) -> None:
        self._latencies.append(latency_s)
        if len(self._latencies) < 5:
            return
        median = statistics.median(self._latencies)
        if self._baseline is None or median < self._baseline:
            self._baseline = median
        if (
            self._rate is not None
            and median > self._latency_factor * self._baseline
            and now - self._last_change >= self._increase_every_s
        ):
            self._rate = max(self._min_rate, self._rate * self._backoff)
            self._latencies.clear()
            self._cut(now)

    def _maybe_increase(self, now: float) -> None:
        if self._rate is None:
            return
        probing = self._decreases <= 1
        # Until a second 429 confirms where the ceiling is, probe upwards quickly: one step per
        # round trip (a 429 for a rate shows up one latency after it was tried).
        every = self._probe_every() if probing else self._increase_every_s
        step = self._probe_increase if probing else self._steady_increase
        if not probing and self._ceiling is not None and self._rate >= self._ceiling:
            # At the measured ceiling: creep, in case the service allows more now.
            every, step = every * CREEP_SLOWER, 1.0 + (step - 1.0) / CREEP_SLOWER
        if now - self._last_change < every:
            return
        if self._pacer_bound:
            self._rate *= step
        self._changed(now)

    def _probe_every(self) -> float:
        latency = statistics.median(self._latencies) if self._latencies else 0.0
        return min(self._increase_every_s, max(2.0, 1.5 * latency))

    def _cut(self, now: float) -> None:
        self._last_cut = now
        self._changed(now)

    def _changed(self, now: float) -> None:
        self._last_change = now
        self._pacer_bound = False

    def _block(self, now: float, wait: float) -> float:
        end = now + wait
        self._waited_s += max(0.0, end - max(now, self._blocked_until))
        self._blocked_until = max(self._blocked_until, end)
        return wait
