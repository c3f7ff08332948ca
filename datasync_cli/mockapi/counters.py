"""What the simulator did, for tests and benchmarks."""

from __future__ import annotations

import threading
from collections import Counter


class MockCounters:
    """What the server did, for tests: requests per route, refusals, tokens, faults."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.rate_limited = 0
        self.feed_throttled = 0
        self.tokens_issued = 0
        self.connections = 0
        self.in_flight = 0
        self.max_in_flight = 0

    def count(self, route: str) -> None:
        with self._lock:
            self.requests[route] += 1

    def fault(self, kind: str) -> None:
        with self._lock:
            self.faults[kind] += 1

    def add(self, name: str) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)

    def enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1
