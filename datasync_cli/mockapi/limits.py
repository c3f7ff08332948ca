"""The service's throttles: a fixed window on the standard endpoint, a hidden bucket on the feed."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class WindowVerdict:
    """The outcome of one counted request, with what goes into the X-RateLimit headers."""

    allowed: bool
    limit: int
    remaining: int
    reset_s: int


class FixedWindow:
    """N requests per W seconds per key; a window opens with the first request after the last."""

    def __init__(self, window_s: float) -> None:
        self._window_s = window_s
        self._state: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, limit: int, now: float) -> WindowVerdict:
        with self._lock:
            opened, count = self._state.get(key, (-math.inf, 0))
            if now >= opened + self._window_s:
                opened, count = now, 0
            count += 1  # refused requests count too
            self._state[key] = (opened, count)
        reset = max(1, math.ceil(opened + self._window_s - now))
        return WindowVerdict(count <= limit, limit, max(0, limit - count), reset)


class TokenBucket:
    """`rate` requests per second with bursts of `burst`, per key."""

    def __init__(self, rate: float, burst: int) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._state: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, now: float) -> float:
        """0 when the request may pass, else the seconds until it would."""
        with self._lock:
            tokens, seen = self._state.get(key, (self._burst, now))
            tokens = min(self._burst, tokens + (now - seen) * self._rate)
            if tokens >= 1.0:
                self._state[key] = (tokens - 1.0, now)
                return 0.0
            self._state[key] = (tokens, now)
            return (1.0 - tokens) / self._rate
