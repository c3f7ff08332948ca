"""An adaptive limiter for the feed, which advertises no limit but may hide a throttle."""

from __future__ import annotations

import statistics
import threading
from collections import deque

from ..clock import Clock
from .faults import Stopped

POLL_S = 0.05


class FeedThrottle:
    """Shared by every feed reader: unpaced until the first 429, then paced just under the ceiling.

    The first 429 sets a rate from the recent successes (or from Retry-After when there are none
    yet); afterwards the rate grows gently while requests stay clean and shrinks on every further
    429 or sharp rise in latency. 429s for requests sent before the last change are not counted
    twice. Thread-safe; waiting goes through the Clock.
    """

    def __init__(
        self,
        clock: Clock,
        max_concurrency: int,
        *,
        window_s: float = 15.0,
        headroom: float = 0.95,
        backoff: float = 0.9,
        increase_every_s: float = 10.0,
        probe_increase: float = 1.25,
        steady_increase: float = 1.03,
        latency_factor: float = 2.0,
        episode_gap_s: float = 30.0,
        min_rate: float = 0.05,
    ) -> None:
        self._clock = clock
        self._max_concurrency = max(1, max_concurrency)
        self._window_s = window_s
        self._headroom = headroom
        self._backoff = backoff
        self._increase_every_s = increase_every_s
        self._probe_increase = probe_increase
        self._steady_increase = steady_increase
        self._latency_factor = latency_factor
        self._episode_gap_s = episode_gap_s
        self._min_rate = min_rate
        self._lock = threading.Lock()
        self._rate: float | None = None
        self._next_at = 0.0
        self._paused_until = 0.0
        self._in_flight = 0
        self._started_at: float | None = None
        self._completions: deque[float] = deque()
        self._accepted_sends: deque[float] = deque()  # send times of requests that succeeded
        self._latencies: deque[float] = deque(maxlen=9)
        self._baseline: float | None = None
        self._last_change = float("-inf")
        self._last_cut = float("-inf")
        self._last_throttled = float("-inf")
        self._anchor: float | None = None
        self._since_anchor = 0
        self._decreases = 0
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
                raise Stopped()
            wait = self.try_acquire()
            if wait <= 0:
                return self._clock.monotonic()
            if self._clock.sleep(wait, stop):
                raise Stopped()

    def try_acquire(self) -> float:
        """Take a slot and return 0.0, or return how many seconds to wait before asking again."""
        with self._lock:
            now = self._clock.monotonic()
            self._maybe_increase(now)
            if self._paused_until > now:
                return self._block(now, self._paused_until - now)
            if self._in_flight >= self._max_concurrency:
                return POLL_S
            if self._rate is not None:
                if self._next_at > now:
                    self._pacer_bound = True
                    return self._block(now, self._next_at - now)
                self._next_at = max(self._next_at, now) + 1.0 / self._rate
            if self._started_at is None:
                self._started_at = now
            self._in_flight += 1
            return 0.0

    def on_success(self, latency_s: float, sent_at: float | None = None) -> None:
        """A feed request succeeded after `latency_s` seconds."""
        with self._lock:
            now = self._clock.monotonic()
            self._in_flight = max(0, self._in_flight - 1)
            sent = sent_at if sent_at is not None else now - latency_s
            self._completions.append(now)
            while self._completions and self._completions[0] < now - self._window_s:
                self._completions.popleft()
            if self._anchor is not None and sent >= self._anchor:
                self._since_anchor += 1
            self._accepted_sends.append(sent)
            while self._accepted_sends and self._accepted_sends[0] < now - 4 * self._window_s:
                self._accepted_sends.popleft()
            self._observe_latency(now, latency_s)

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
                self._rate = max(self._min_rate, self._headroom * self._first_estimate(now, wait))
            else:
                new_rate = self._rate * self._backoff
                # Right after probing upwards, what the service accepted just before this refusal
                # is the best guess of its rate (the episode's average counts the slow probing).
                measured = self._measured(now)
                if self._decreases <= 1:
                    recent = self._accepted_before(sent_at if sent_at is not None else now)
                    if recent is not None and (measured is None or recent > measured):
                        measured = recent
                if measured is not None:
                    new_rate = min(new_rate, self._headroom * measured)
                self._rate = max(self._min_rate, new_rate)
            self._decreases += 1
            if self._anchor is None or now - self._last_throttled > self._episode_gap_s:
                self._anchor, self._since_anchor = now, 0
            self._last_throttled = now
            self._cut(now)

    def release(self) -> None:
        """A feed request ended without an answer that says anything about the throttle."""
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)

    def _first_estimate(self, now: float, retry_after: float) -> float:
        # Successes over the recent past include the hidden bucket's burst, so this errs high;
        # the next 429, if any, corrects it from a measurement with the bucket empty.
        start = max(now - self._window_s, self._started_at if self._started_at is not None else now)
        span = now - start
        if len(self._completions) >= 2 and span >= 1.0:
            return len(self._completions) / span
        return 1.0 / retry_after

    def _accepted_before(self, sent_at: float) -> float | None:
        """The rate the service accepted in the window before a refused request was sent.

        We were sending faster than the service let through then (it refused this one), so its
        hidden bucket was empty and what it accepted is its sustained rate. Measuring over the
        whole episode instead would average in the slower probing that came before."""
        start = sent_at - self._window_s
        accepted = sum(1 for t in self._accepted_sends if start <= t < sent_at)
        if accepted < 8:
            return None
        return accepted / self._window_s

    def _measured(self, now: float) -> float | None:
        # Since the first 429 of this episode the hidden bucket has stayed near empty, so the
        # successes sent since then arrived at about the hidden rate.
        if self._anchor is None:
            return None
        # Requests sent within the last latency have not reported yet.
        latency = statistics.median(self._latencies) if self._latencies else 0.0
        span = now - latency - self._anchor
        if span < 5.0 or self._since_anchor < 4:
            return None
        return self._since_anchor / span

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
        if now - self._last_change < every:
            return
        if self._pacer_bound:
            self._rate *= self._probe_increase if probing else self._steady_increase
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
