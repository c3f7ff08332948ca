"""RunMetrics: the counters of one run, its rate over wall time, its ETA, the endpoint it reads,
and the snapshot the display shows."""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

from ..clock import Clock
from ..display import Snapshot, token_warning
from ..models import Batch
from ..sink import WriteResult
from ..source import SourceHealth

RATE_WINDOW_S = 30.0  # events/s is measured over this much wall time (less at the start)


@dataclass(frozen=True)
class EndpointSwitch:
    """The run moved from one endpoint to the other."""

    source: str
    target: str
    at_s: float  # seconds into the run


class RunMetrics:
    """Thread-safe counters fed by readers and the writer, read by the display and summary.

    `stored` is what the database holds of the source (what earlier runs stored, plus what this
    run inserted or rejected): the bar starts there on a resumed run and never passes the total.
    """

    def __init__(
        self,
        clock: Clock,
        stored_before: int = 0,
        page_size: int = 5000,
        endpoint: str = "feed",
    ) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.started = clock.monotonic()
        self.stored_before = stored_before
        self.page_size = page_size
        self.fetched = self.inserted = self.duplicates = self.conflicts = self.rejected = 0
        self.outside = 0
        self.pages = 0
        self.total: int | None = None
        self.endpoint = endpoint  # the one the run means to read: feed if it may have a token
        self.endpoint_pages: dict[str, int] = {}
        self.endpoint_seconds: dict[str, float] = {}
        self._endpoint_since = self.started
        self._switches: list[EndpointSwitch] = []
        self.readers_active = 0
        self._samples: deque[tuple[float, int]] = deque([(self.started, 0)])

    # -- fed by the readers -----------------------------------------------------------------
    def reader_started(self) -> None:
        with self._lock:
            self.readers_active += 1

    def reader_stopped(self) -> None:
        with self._lock:
            self.readers_active -= 1

    def page_fetched(
        self,
        endpoint: str,
        total: int | None,
        outside: int,
        feed_usable: bool,
        *,
        early: bool = False,
    ) -> None:
        """A reader got a page. The run's endpoint changes when a page comes from the other
        one and the token agrees (a feed request still in flight when the token went does
        not switch the run back); the `early` first page, read from the standard endpoint
        while the token is on its way, is no switch."""
        with self._lock:
            if total is not None:
                self.total = total
            self.outside += outside
            if early or endpoint == self.endpoint or (endpoint == "feed") != feed_usable:
                return
            now = self._clock.monotonic()
            self._switches.append(EndpointSwitch(self.endpoint, endpoint, now - self.started))
            self._add_endpoint_time(now)
            self.endpoint = endpoint

    def switches(self) -> list[EndpointSwitch]:
        """Switches since the last call, for the run to announce."""
        with self._lock:
            found, self._switches = self._switches, []
            return found

    def _add_endpoint_time(self, now: float) -> None:
        spent = now - self._endpoint_since
        self.endpoint_seconds[self.endpoint] = self.endpoint_seconds.get(self.endpoint, 0) + spent
        self._endpoint_since = now

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

    # -- read by the display and the summary --------------------------------------------------
    def elapsed_s(self) -> float:
        return self._clock.monotonic() - self.started

    @property
    def stored(self) -> int:
        return self.stored_before + self.inserted + self.rejected

    def rate(self) -> float:
        """Events stored per second over the last RATE_WINDOW_S of wall time: it falls while
        nothing arrives (a rate-limit wait), unlike a rate taken from page timings."""
        now = self._clock.monotonic()
        with self._lock:
            progress = self.inserted + self.rejected
            self._samples.append((now, progress))
            while len(self._samples) > 2 and now - self._samples[1][0] >= RATE_WINDOW_S:
                self._samples.popleft()
            then, before = self._samples[0]
        span = now - then
        return (progress - before) / span if span > 0 else 0.0

    def eta_s(self, rate: float, health: SourceHealth) -> float | None:
        """Seconds to the end: on the standard endpoint from its request budget (pages left at
        the window's rate), else from the measured rate."""
        if self.total is None:
            return None
        left = max(self.total - self.stored, 0)
        if left == 0:
            return 0.0
        if self.endpoint == "standard" and health.standard_requests_per_s:
            return math.ceil(left / self.page_size) / health.standard_requests_per_s
        return left / rate if rate > 0 else None

    def snapshot(self, health: SourceHealth, ranges_left: int) -> Snapshot:
        rate = self.rate()
        with self._lock:
            snap = Snapshot(
                stored=self.stored,
                total=self.total,
                fetched=self.fetched,
                inserted=self.inserted,
                duplicates=self.duplicates,
                conflicts=self.conflicts,
                rejected=self.rejected,
                outside=self.outside,
                events_per_s=rate,
                readers=self.readers_active,
                pages=self.pages,
                endpoint=self.endpoint,
                elapsed_s=round(self.elapsed_s(), 1),
            )
        snap.eta_s = self.eta_s(rate, health)
        snap.ranges_left = ranges_left
        snap.retries = health.retries
        snap.rate_limited = health.rate_limited
        snap.rate_wait_s = health.rate_wait_s
        snap.token_left_s = health.token_seconds_left
        snap.token_left_is_bound = health.token_left_is_bound
        snap.token_origin = health.token_origin
        snap.feed_pace = round(health.feed_rate, 3) if health.feed_rate else None
        if health.token_problem:
            snap.warnings.append(health.token_problem)
        warning = token_warning(snap)
        if warning:
            snap.warnings.append(warning)
        return snap

    def summary(
        self, health: SourceHealth, completed: bool, ranges_left: int
    ) -> dict[str, Any]:
        """The end-of-run figures, in the order an operator reads them."""
        elapsed = self.elapsed_s()
        with self._lock:
            self._add_endpoint_time(self._clock.monotonic())
            return {
                "status": "complete" if completed else "incomplete",
                "stored": self.stored,
                "source_total": self.total,
                "fetched": self.fetched,
                "inserted": self.inserted,
                "duplicates": self.duplicates,
                "conflicts": self.conflicts,
                "rejected": self.rejected,
                "outside_range": self.outside,
                "pages": self.pages,
                "pages_by_endpoint": dict(self.endpoint_pages),
                "seconds_by_endpoint": {
                    name: round(seconds, 1)
                    for name, seconds in self.endpoint_seconds.items()
                    if self.endpoint_pages.get(name)
                },
                "retries": health.retries,
                "rate_limited": health.rate_limited,
                "rate_wait_s": round(health.rate_wait_s, 1),
                "elapsed_s": round(elapsed, 1),
                "events_per_s": round((self.inserted + self.rejected) / elapsed, 1)
                if elapsed
                else 0,
                "ranges_left": ranges_left,
            }
