"""RunMetrics: the counters of one run, its rate, and the snapshot the display shows."""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from ..clock import Clock
from ..display import Snapshot, token_warning
from ..models import Batch
from ..sink import WriteResult
from ..source import SourceHealth

RATE_WINDOW_S = 30.0


class RunMetrics:
    """Thread-safe counters fed by readers and the writer, read by the display and summary."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.started = clock.monotonic()
        self.fetched = 0
        self.inserted = 0
        self.duplicates = 0
        self.conflicts = 0
        self.rejected = 0
        self.pages = 0
        self.total: int | None = None
        self.endpoint = "-"
        self.endpoint_pages: dict[str, int] = {}
        self.readers_active = 0
        self._samples: deque[tuple[float, int]] = deque(maxlen=120)

    # -- fed by the readers -----------------------------------------------------------------
    def reader_started(self) -> None:
        with self._lock:
            self.readers_active += 1

    def reader_stopped(self) -> None:
        with self._lock:
            self.readers_active -= 1

    def page_fetched(self, endpoint: str, total: int | None) -> None:
        with self._lock:
            self.endpoint = endpoint
            if total is not None:
                self.total = total

    # -- fed by the writer ------------------------------------------------------------------
    def batch_written(self, batch: Batch, result: WriteResult) -> None:
        with self._lock:
            self.pages += 1
            self.fetched += batch.fetched
            self.inserted += result.inserted
            self.duplicates += result.duplicates
            self.conflicts += result.conflicts
            self.rejected += result.rejected
            endpoint = batch.checkpoint.endpoint or "-"
            self.endpoint_pages[endpoint] = self.endpoint_pages.get(endpoint, 0) + 1
            self._samples.append((self._clock.monotonic(), self.fetched))

    # -- read by the display and the summary --------------------------------------------------
    def elapsed_s(self) -> float:
        return self._clock.monotonic() - self.started

    def rate(self) -> float:
        """Events per second over the recent window, so the ETA follows current conditions."""
        with self._lock:
            samples = list(self._samples)
        if len(samples) < 2:
            return 0.0
        t_end, n_end = samples[-1]
        t_start, n_start = next(
            (s for s in samples if t_end - s[0] <= RATE_WINDOW_S), samples[0]
        )
        span = t_end - t_start
        return (n_end - n_start) / span if span > 0 else 0.0

    def snapshot(self, health: SourceHealth, ranges_left: int) -> Snapshot:
        rate = self.rate()
        with self._lock:
            snap = Snapshot(
                fetched=self.fetched,
                inserted=self.inserted,
                duplicates=self.duplicates,
                rejected=self.rejected,
                total=self.total,
                events_per_s=rate,
                readers=self.readers_active,
                pages=self.pages,
                endpoint=self.endpoint,
                elapsed_s=round(self.elapsed_s(), 1),
            )
        if snap.total and rate > 0:
            snap.eta_s = max(snap.total - snap.fetched, 0) / rate
        snap.ranges_left = ranges_left
        snap.retries = health.retries
        snap.rate_limited = health.rate_limited
        snap.rate_wait_s = health.rate_wait_s
        snap.token_left_s = health.token_seconds_left
        snap.token_origin = health.token_origin
        snap.feed_pace = round(health.feed_rate, 3) if health.feed_rate else None
        if health.token_problem:
            snap.warnings.append(f"stream token: {health.token_problem}")
        warning = token_warning(snap)
        if warning:
            snap.warnings.append(warning)
        return snap

    def summary(
        self, health: SourceHealth, completed: bool, elapsed_s: float, ranges_left: int
    ) -> dict[str, Any]:
        """The end-of-run figures, in the order an operator reads them."""
        with self._lock:
            return {
                "status": "complete" if completed else "incomplete",
                "fetched": self.fetched,
                "inserted": self.inserted,
                "duplicates": self.duplicates,
                "conflicts": self.conflicts,
                "rejected": self.rejected,
                "source_total": self.total,
                "pages": self.pages,
                "pages_by_endpoint": dict(self.endpoint_pages),
                "retries": health.retries,
                "rate_limited": health.rate_limited,
                "rate_wait_s": round(health.rate_wait_s, 1),
                "elapsed_s": round(elapsed_s, 1),
                "events_per_s": round(self.fetched / elapsed_s, 1) if elapsed_s else 0,
                "ranges_left": ranges_left,
            }
