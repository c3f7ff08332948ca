"""The standard endpoint's fixed request window, shared by every reader so 429s stay rare."""

from __future__ import annotations

import threading
from collections.abc import Mapping

from ..clock import Clock
from ..settings import DEFAULTS
from .errors import StopRequestedError, bounded_wait
from .headers import delay_seconds, header, header_int

# Window resets are announced in whole seconds and the server's clock is not ours.
DEFAULT_MARGIN_S = 1.0
# How often a waiting reader looks again when it waits for a response, not for a time.
POLL_S = 0.05
DEFAULT_PAUSE_S = 1.0
# Two resets further apart than this belong to different windows.
_SAME_WINDOW_S = 1.5


class RateBudget:
    """Paces requests from `X-RateLimit-*`: burst while slots remain, wait for the reset after.

    Before anything is known, one request at a time is allowed so its headers can be learned.
    A 429 pauses every reader. Thread-safe; waiting goes through the Clock.
    """

    def __init__(
        self,
        clock: Clock,
        margin_s: float = DEFAULT_MARGIN_S,
        max_wait_s: float = DEFAULTS.max_wait_s,
    ) -> None:
        self._clock = clock
        self._max_wait = max_wait_s
        self._margin = margin_s
        self._lock = threading.Lock()
        self._limit: int | None = None
        self._remaining: int | None = None
        self._reset_at: float | None = None
        self._in_flight = 0
        self._window_s: float | None = None  # the longest reset seen: the window's length
        self._paused_until = 0.0
        self._blocked_until = 0.0
        self._waited_s = 0.0
        self._throttled = 0

    @property
    def waited_s(self) -> float:
        """Wall seconds during which no reader could send (overlapping waits count once)."""
        return self._waited_s

    @property
    def throttled(self) -> int:
        """How many 429s the standard endpoint answered."""
        return self._throttled

    @property
    def limit(self) -> int | None:
        return self._limit

    def requests_per_s(self) -> float | None:
        """The sustained rate the window allows (limit / window length), once both are known."""
        limit, window = self._limit, self._window_s
        return limit / window if limit and window else None

    @property
    def remaining(self) -> int | None:
        return self._remaining

    def acquire(self, stop: threading.Event | None = None) -> None:
        """Block until a request may be sent; raise StopRequestedError on `stop`."""
        while True:
            if stop is not None and stop.is_set():
                raise StopRequestedError()
            wait = self.try_acquire()
            if wait <= 0:
                return
            bounded_wait(wait, self._max_wait, "the events endpoint's rate limit")
            if self._clock.sleep(wait, stop):
                raise StopRequestedError()

    def try_acquire(self) -> float:
        """Take a slot and return 0.0, or return how many seconds to wait before asking again."""
        with self._lock:
            now = self._clock.monotonic()
            if self._paused_until > now:
                return self._block(now, self._paused_until - now)
            if self._reset_at is not None and now >= self._reset_at + self._margin:
                # The window is over; the next one starts with our next request.
                self._remaining = self._limit
                self._reset_at = None
            if self._remaining is not None and self._remaining <= 0 and self._reset_at is None:
                if self._in_flight == 0:
                    self._remaining = None  # nothing will tell us more: learn again
                else:
                    return POLL_S
            if self._remaining is None:
                if self._in_flight == 0:
                    self._in_flight += 1
                    return 0.0
                return POLL_S
            if self._remaining > 0:
                self._remaining -= 1
                self._in_flight += 1
                return 0.0
            assert self._reset_at is not None
            return self._block(now, self._reset_at + self._margin - now)

    def observe(self, headers: Mapping[str, str]) -> None:
        """One request ended; learn the window from its headers (empty: there was no response)."""
        now_wall = self._clock.wall()
        limit = header_int(headers, "X-RateLimit-Limit")
        remaining = header_int(headers, "X-RateLimit-Remaining")
        reset = delay_seconds(header(headers, "X-RateLimit-Reset"), now_wall)
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)
            if limit is not None and limit > 0:
                self._limit = limit
            if remaining is None or reset is None:
                return
            now = self._clock.monotonic()
            reset_at = now + reset
            if reset > 0 and (self._window_s is None or reset > self._window_s):
                self._window_s = reset
            # Requests still in flight will each take a slot of this window.
            estimate = max(0, remaining - self._in_flight)
            new_window = (
                self._remaining is None
                or self._reset_at is None
                or now >= self._reset_at
                or reset_at > self._reset_at + _SAME_WINDOW_S
            )
            if new_window:
                self._remaining = estimate
                self._reset_at = reset_at
            else:
                assert self._remaining is not None and self._reset_at is not None
                self._remaining = min(self._remaining, estimate)
                self._reset_at = max(self._reset_at, reset_at)

    def pause(self, seconds: float | None) -> None:
        """A 429 arrived: nobody sends for `seconds` (one second when the service did not say)."""
        wait = DEFAULT_PAUSE_S if seconds is None else max(0.0, seconds)
        with self._lock:
            self._throttled += 1
            now = self._clock.monotonic()
            self._paused_until = max(self._paused_until, now + wait)
            if self._remaining is not None:
                self._remaining = 0

    def _block(self, now: float, wait: float) -> float:
        end = now + wait
        self._waited_s += max(0.0, end - max(now, self._blocked_until))
        self._blocked_until = max(self._blocked_until, end)
        return wait
