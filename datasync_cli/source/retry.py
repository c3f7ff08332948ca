"""One named retry policy for every call to the API: backoff with full jitter, 429s apart."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import TypeVar

from ..clock import Clock
from ..errors import FatalSourceError, RetriableSourceError
from ..settings import DEFAULTS
from .errors import RateLimitedError, StopRequestedError, bounded_wait

T = TypeVar("T")

GIVE_UP_HINT = "the service is failing; rerun later: ingest resumes from its checkpoint"
# 429s are the service pacing us, not failing: they get a much larger allowance.
DEFAULT_MAX_THROTTLED = 100


class RetryPolicy:
    """Retries RetriableSourceError with exponential backoff and full jitter.

    A 429 waits its Retry-After (the shared pacing, told by the caller, pauses every reader)
    and counts against its own, larger allowance. Waiting is interruptible: when `stop` is raised
    the call raises StopRequestedError. Thread-safe; one policy can serve every reader.
    """

    def __init__(
        self,
        clock: Clock,
        stop: threading.Event | None = None,
        *,
        max_attempts: int = DEFAULTS.max_attempts,
        max_throttled: int = DEFAULT_MAX_THROTTLED,
        base_s: float = 0.5,
        factor: float = 2.0,
        cap_s: float = 30.0,
        max_wait_s: float = DEFAULTS.max_wait_s,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._clock = clock
        self._stop = stop
        self.max_attempts = max(1, max_attempts)
        self.max_throttled = max(1, max_throttled)
        self._base = base_s
        self._factor = factor
        self._cap = cap_s
        self._max_wait = max_wait_s
        self._rand = rand
        self._lock = threading.Lock()
        self._retries = 0
        self._throttled = 0

    @property
    def retries(self) -> int:
        """Retries after failures (not 429s) so far, across every caller."""
        return self._retries

    @property
    def throttled(self) -> int:
        """429s answered so far, across every caller."""
        return self._throttled

    def backoff(self, failures: int) -> float:
        """The delay before retry number `failures` (1-based): full jitter under a capped curve."""
        ceiling = min(self._cap, self._base * self._factor ** (failures - 1))
        return self._rand() * ceiling

    def call(
        self,
        fn: Callable[[], T],
        *,
        endpoint: str,
    ) -> T:
        """Run `fn` until it succeeds, a non-retriable error escapes, or the allowance runs out."""
        failures = 0
        throttled = 0
        while True:
            if self._stop is not None and self._stop.is_set():
                raise StopRequestedError()
            try:
                return fn()
            except RateLimitedError as exc:
                throttled += 1
                with self._lock:
                    self._throttled += 1
                if throttled >= self.max_throttled:
                    raise self._give_up(endpoint, throttled, exc) from exc
                delay = exc.retry_after if exc.retry_after is not None else self.backoff(throttled)
                bounded_wait(delay, self._max_wait, endpoint)
            except RetriableSourceError as exc:
                failures += 1
                if failures >= self.max_attempts:
                    raise self._give_up(endpoint, failures, exc) from exc
                with self._lock:
                    self._retries += 1
                delay = self.backoff(failures)
            if self._clock.sleep(delay, self._stop):
                raise StopRequestedError()

    @staticmethod
    def _give_up(endpoint: str, attempts: int, last: RetriableSourceError) -> FatalSourceError:
        return FatalSourceError(
            f"giving up on {endpoint} after {attempts} attempts: {last.message}", GIVE_UP_HINT
        )
