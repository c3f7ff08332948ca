"""Request handling of the simulated service, independent of the socket layer.

Checks run in this order on the data endpoints: injected transport faults (dropped connection,
5xx, not counted), API key (401, not counted), then the standard endpoint's fixed window (every
later response is counted) or the feed's token and hidden throttle, then parameters.
The parts: `gate` (keys, window, tokens, throttle), `chaos` (injected faults), `envelope`
(paging parameters and the envelope), `endpoints` (one method per endpoint).
"""

from __future__ import annotations

import threading
import uuid

from ..clock import Clock, SystemClock
from .chaos import Chaos
from .config import MockConfig
from .counters import MockCounters
from .endpoints import Endpoints
from .gate import Gate
from .messages import Answer, Refusal, Request, Response, error, json_response
from .routes import DATA_ROUTES, EVENTS_PATH, route_of
from .stream import EventStream

__all__ = ["MockApp"]


class MockApp:
    """The simulated DataSync service: routes a request through faults, gate and endpoint."""

    def __init__(self, config: MockConfig, clock: Clock | None = None) -> None:
        self._config = config
        self.clock: Clock = clock or SystemClock()
        self.stream = EventStream(config)
        self.counters = MockCounters()
        self.stopping = threading.Event()
        self.chaos = Chaos(config, self.counters)
        self.gate = Gate(config, self.clock, self.counters)
        self.endpoints = Endpoints(config, self.clock, self.stream, self.gate, self.chaos)

    @property
    def config(self) -> MockConfig:
        return self._config

    @config.setter
    def config(self, config: MockConfig) -> None:
        """Knobs read per request (key, limits, faults, latency, TTLs shown) can be changed
        while serving, as tests do; the stream and the throttles keep their first settings."""
        self._config = config
        for part in (self.chaos, self.gate, self.endpoints, self.endpoints.envelope):
            part.config = config

    def handle(self, req: Request) -> Response:
        self.counters.enter()
        try:
            return self._handle(req)
        finally:
            self.counters.leave()

    def _handle(self, req: Request) -> Response:
        self.chaos.delay(self.stopping)
        path = req.path.rstrip("/") or "/"
        request_id = str(uuid.uuid4())
        route = route_of(req.method, path)
        self.counters.count(route)
        extra: list[tuple[str, str]] = []
        try:
            if route in DATA_ROUTES:
                fault = self.chaos.transport_fault()
                if fault is not None:
                    return fault
            status, body, extra = self._dispatch(route, req, path, request_id)
        except Refusal as refusal:
            status, body, extra = refusal.status, refusal.body, refusal.headers
        response = json_response(status, body, request_id, extra)
        if status == 200 and route in DATA_ROUTES:
            self.chaos.truncate(response)
        return response

    def _dispatch(self, route: str, req: Request, path: str, request_id: str) -> Answer:
        endpoints = self.endpoints
        if route == "info":
            return endpoints.info(req)
        if route == "events":
            return endpoints.events(req, request_id)
        if route == "event":
            return endpoints.event(req, path[len(EVENTS_PATH) + 1 :])
        if route == "feed":
            return endpoints.feed(req, request_id)
        if route == "stream_access":
            return endpoints.stream_access(req)
        status, body = error(
            404, "Not Found", "The requested endpoint does not exist", "ENDPOINT_NOT_FOUND"
        )
        return status, body, []
