"""An adaptive limiter for the feed, which advertises no limit but may hide a throttle."""

from __future__ import annotations

import math
import threading

from ..clock import Clock
from ..settings import DEFAULTS
from .errors import StopRequestedError, bounded_wait
from .feedlatency import RoundTrips
from .feedline import InFlight, WaitingLine
from .feedopening import Opening
from .feedpace import Pace

POLL_S = 0.05


class FeedThrottle:
    """Shared by every feed reader: when each may send.

    Until the service refuses anything the `Opening` decides (a burst, then a pace growing
    `growth` times per round trip, spread over it rather than sent in waves); after that the
    `Pace` does, just above what the service was measured to accept. Every 429 pauses every
    reader for its Retry-After, and after the pause requests go out one pacing interval apart:
    no two readers spend the same refusal, and nothing is sent while a wait is known to hold.
    Waiting readers stand in a `WaitingLine`: the one whose range has the most left goes
    first. Thread-safe; waits use the Clock.
    """

    def __init__(
        self,
        clock: Clock,
        max_concurrency: int,
        *,
        initial_window: int = 2,
        growth: float = 1.25,
        over: float = 1.01,
        backoff: float = 0.9,
        probe_increase: float = 1.03,
        steady_increase: float = 1.01,
        quiet_s: float = 120.0,
        latency_factor: float = 2.0,
        min_rate: float = 0.05,
        max_wait_s: float = DEFAULTS.max_wait_s,
    ) -> None:
        self._clock = clock
        self._max_concurrency = max(1, max_concurrency)
        self._max_wait = max_wait_s
        self._lock = threading.Lock()
        self._opening = Opening(initial_window, growth, self._max_concurrency)
        self._trips = RoundTrips(latency_factor)
        self._pace = Pace(
            over=over,
            backoff=backoff,
            probe_increase=probe_increase,
            steady_increase=steady_increase,
            quiet_s=quiet_s,
            max_step=growth,
            min_rate=min_rate,
        )
        self._line = WaitingLine()
        self._next_at = self._paused_until = 0.0
        self._throttled = 0
        self._flight = InFlight()
        self._granted: dict[int, float] = {}  # ticket -> send time, until acquire returns it
        self._blocked_until = self._waited_s = 0.0

    @property
    def rate(self) -> float | None:
        """Requests per second we hold to, or None while no throttle has shown itself."""
        return self._pace.rate

    @property
    def throttled(self) -> int:
        return self._throttled

    @property
    def waited_s(self) -> float:
        """Wall seconds during which no feed reader could send (overlapping waits count once)."""
        return self._waited_s

    @property
    def in_flight(self) -> int:
        return len(self._flight)

    def lanes(self) -> int:
        """How many requests the pace keeps in flight (rate x latency), or every reader while
        no throttle has shown itself."""
        with self._lock:
            rate = self._pace.rate
            if rate is None:
                return self._max_concurrency
            return max(1, min(self._max_concurrency, math.ceil(rate * self._trips.median())))

    def expect_latency(self, seconds: float) -> None:
        """A round trip measured elsewhere (the run's first page): until the feed answers, the
        opening spreads its requests over it instead of sending them at once."""
        with self._lock:
            if seconds > 0 and not self._trips.known:
                self._trips.expect(seconds)
                self._opening.expect_round_trip()

    def run_left(self, requests: float | None) -> None:
        """About how many requests the whole run still needs (None while unknown)."""
        with self._lock:
            self._pace.run_left = requests

    def acquire(self, stop: threading.Event | None = None, priority: float = 0.0) -> float:
        """Block until a feed request may be sent; return its send time (monotonic). Among
        waiting readers the highest `priority` goes first."""
        ticket = self.enqueue(priority)
        try:
            while True:
                if stop is not None and stop.is_set():
                    raise StopRequestedError()
                wait = self.try_acquire(ticket)
                if wait <= 0:
                    with self._lock:
                        return self._granted.pop(ticket)
                bounded_wait(wait, self._max_wait, "the feed")
                if self._clock.sleep(wait, stop):
                    raise StopRequestedError()
        finally:
            self.cancel(ticket)

    def enqueue(self, priority: float = 0.0) -> int:
        """Join the line of waiting readers; the ticket is for try_acquire and cancel."""
        with self._lock:
            return self._line.join(priority)

    def cancel(self, ticket: int) -> None:
        with self._lock:
            self._line.leave(ticket)

    def try_acquire(self, ticket: int | None = None) -> float:
        """Take a slot and return 0.0, or return how many seconds to wait before asking again.

        With a ticket the slot goes only to the first in line; without one, to the caller."""
        with self._lock:
            now = self._clock.monotonic()
            self._pace.maybe_increase(now, self._trips.median())
            rate = self._pace.rate
            if self._paused_until > now:
                return self._block(now, self._paused_until - now)
            cap = self._max_concurrency if rate is not None else self._opening.window
            if len(self._flight) >= cap:
                return POLL_S
            if self._next_at > now:
                self._pace.held_back()
                return self._block(now, self._next_at - now)
            if ticket is not None:
                if not self._line.first(ticket):
                    return POLL_S
                self._line.leave(ticket)
                self._granted[ticket] = now  # the send time, exactly as measured below
            self._flight.add(now)
            if rate is None:
                latency = self._trips.median()
                self._opening.sent(now, len(self._flight), latency)
                interval = self._opening.interval(now, latency)
            else:
                interval = 1.0 / self._pace.current(self._trips.median())
            self._next_at = max(self._next_at, now) + interval
            return 0.0

    def on_success(self, latency_s: float, sent_at: float | None = None) -> None:
        """A feed request succeeded after `latency_s` seconds."""
        with self._lock:
            now = self._clock.monotonic()
            sent = sent_at if sent_at is not None else now - latency_s
            self._flight.landed(sent_at)
            self._pace.measure.accepted(sent)
            self._pace.measure.answered(self._flight.oldest(now))
            self._pace.measured(now)
            self._trips.add(latency_s)
            self._pace.measure.spread_s = self._trips.spread()
            if self._pace.rate is None:
                if self._trips.near_best(latency_s):
                    self._opening.answered()
            elif self._trips.struggling() and self._pace.slow_down(now, self._trips.median()):
                self._trips.forget()

    def on_throttled(self, retry_after_s: float | None, sent_at: float | None = None) -> None:
        """A feed request got a 429: everyone pauses, and the pace is set again."""
        with self._lock:
            now = self._clock.monotonic()
            self._flight.landed(sent_at)
            self._throttled += 1
            wait = retry_after_s if retry_after_s is not None and retry_after_s > 0 else 1.0
            self._paused_until = max(self._paused_until, now + wait)
            self._next_at = max(self._next_at, self._paused_until)
            sent = sent_at if sent_at is not None else now
            self._pace.measure.refused(sent, retry_after_s, self._flight.oldest(now))
            if self._pace.rate is None:
                first = self._opening.pace_at(sent_at)
                if first <= 0:
                    return  # sent in the opening burst, before any round trip was known
            else:
                first = 0.0
            self._pace.refused(now, sent_at, wait, self._trips.median(), first)

    def release(self, sent_at: float | None = None) -> None:
        """A feed request ended without an answer that says anything about the throttle."""
        with self._lock:
            self._flight.landed(sent_at)

    def _block(self, now: float, wait: float) -> float:
        end = now + wait
        self._waited_s += max(0.0, end - max(now, self._blocked_until))
        self._blocked_until = max(self._blocked_until, end)
        return wait
