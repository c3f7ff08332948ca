"""Injected faults: latency, dropped connections, 5xx, truncated bodies, stripped fields.

One seeded random source serves every fault, so a seed gives the same faults in the same order.
"""

from __future__ import annotations

import random
import threading
import uuid

from .config import MockConfig
from .counters import MockCounters
from .faults import strip_optional
from .messages import Response, error, json_response
from .stream import PageSlice

_GATEWAY_PAGE = (
    "<html>\r\n<head><title>{0}</title></head>\r\n<body>\r\n<center><h1>{0}</h1></center>\r\n"
    "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


class Chaos:
    """Decides, with the configured probabilities, which faults a request gets."""

    def __init__(self, config: MockConfig, counters: MockCounters) -> None:
        self.config = config
        self.counters = counters
        self._rng = random.Random(config.seed)
        self._lock = threading.Lock()

    def chance(self, p: float) -> bool:
        if p <= 0:
            return False
        with self._lock:
            return self._rng.random() < p

    def delay(self, stopping: threading.Event) -> None:
        """The configured latency plus jitter; cut short when the server stops."""
        base, jitter = self.config.latency_ms, self.config.latency_jitter_ms
        if base <= 0 and jitter <= 0:
            return
        with self._lock:
            extra = self._rng.uniform(0, jitter) if jitter > 0 else 0.0
        stopping.wait((base + extra) / 1000)

    def transport_fault(self) -> Response | None:
        """A dropped connection or a 5xx instead of the answer, or None."""
        if self.chance(self.config.p_drop):
            self.counters.fault("drop")
            return Response(0, drop=True)
        if not self.chance(self.config.p5xx):
            return None
        with self._lock:
            status = self._rng.choice((500, 502, 503, 504))
        self.counters.fault("5xx")
        if status in (502, 504):
            title = "502 Bad Gateway" if status == 502 else "504 Gateway Time-out"
            return Response(
                status,
                _GATEWAY_PAGE.format(title).encode(),
                [("Content-Type", "text/html")],
            )
        reason, code = (
            ("Internal Server Error", "INTERNAL_ERROR")
            if status == 500
            else ("Service Unavailable", "SERVICE_UNAVAILABLE")
        )
        return json_response(
            *error(status, reason, "The server could not complete the request", code),
            str(uuid.uuid4()),
            [],
        )

    def truncate(self, response: Response) -> None:
        """Cut a 200's body short at a random byte (Content-Length will match the cut)."""
        if not self.chance(self.config.p_truncate):
            return
        self.counters.fault("truncate")
        with self._lock:
            cut = self._rng.randint(1, max(1, len(response.body) - 1))
        response.body = response.body[:cut]

    def strip_fields(self, page: PageSlice) -> PageSlice | None:
        """About a quarter of the page's events without some optional fields, or None."""
        if not page.records or not self.chance(self.config.p_missing_fields):
            return None
        self.counters.fault("missing_fields")
        with self._lock:
            stripped = [
                strip_optional(r, self._rng) if self._rng.random() < 0.25 else r
                for r in page.records
            ]
        return PageSlice(stripped, page.last_index, page.has_more)
