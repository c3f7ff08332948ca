"""The service's endpoints: each turns an admitted request into a status, a body and headers."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from ..clock import Clock
from .chaos import Chaos
from .config import MockConfig
from .envelope import Envelope
from .gate import Gate
from .messages import Answer, Refusal, Request, error, seconds
from .routes import FEED_PATH, TOKEN_HEADER
from .stream import EventStream


class Endpoints:
    """info, events, one event, the feed and the token endpoint, as the live service answers."""

    def __init__(
        self,
        config: MockConfig,
        clock: Clock,
        stream: EventStream,
        gate: Gate,
        chaos: Chaos,
    ) -> None:
        self.config = config
        self.clock = clock
        self.stream = stream
        self.gate = gate
        self.chaos = chaos
        self.envelope = Envelope(config, clock, stream)

    def info(self, req: Request) -> Answer:
        self.gate.authenticate(req)  # the live service answers 401 here too
        body = {
            "name": "DataSync Analytics API",
            "version": "v1",
            "endpoints": {
                "events": "GET /api/v1/events?limit=&cursor=",
                "event": "GET /api/v1/events/:id",
            },
        }
        return 200, body, []

    def events(self, req: Request, request_id: str) -> Answer:
        bucket, limit = self.gate.authenticate(req)
        headers = self.gate.count_in_window(bucket, limit)
        try:
            start = self.envelope.cursor_start(req.query.get("cursor"))
            page_size = self.envelope.limit(req.query.get("limit"))
        except Refusal as refusal:
            refusal.headers = headers
            raise
        page = self.stream.page(start, self.stream.size, page_size, False, as_json=True)
        return 200, self.envelope.wrap(page, page_size, request_id), headers

    def event(self, req: Request, event_id: str) -> Answer:
        bucket, limit = self.gate.authenticate(req)
        headers = self.gate.count_in_window(bucket, limit)
        index = self.stream.timeline.index_of(event_id)
        kind = None if index is None else self.stream.kinds.get(index)
        if index is None or kind in ("missing_id", "empty_id"):
            raise Refusal(
                *error(404, "Not Found", f"Event {event_id} not found", "EVENT_NOT_FOUND"), headers
            )
        return 200, {"data": self.stream.record(index, epoch_only=False)}, headers

    def feed(self, req: Request, request_id: str) -> Answer:
        bucket, _ = self.gate.authenticate(req)
        self.gate.admit_to_feed(req, bucket)
        since = self.envelope.epoch_param(req.query, "since")
        until = self.envelope.epoch_param(req.query, "until")
        start = self.envelope.cursor_start(req.query.get("cursor"))
        page_size = self.envelope.limit(req.query.get("limit"))
        first, stop = self.stream.bounds(since, until)
        # Fields can only be stripped from dicts; without that fault, events come as text.
        as_json = self.config.p_missing_fields <= 0
        page = self.stream.page(max(start, first), stop, page_size, True, since, until, as_json)
        headers: list[tuple[str, str]] = []
        stripped = self.chaos.strip_fields(page)
        if stripped is not None:
            page = stripped
            headers.append(("X-Chaos-Applied", "missingFields"))
        return 200, self.envelope.wrap(page, page_size, request_id), headers

    def stream_access(self, req: Request) -> Answer:
        token = self.gate.issue_token(req)
        generated = datetime.fromtimestamp(self.clock.wall(), timezone.utc)
        body: dict[str, Any] = {
            "streamAccess": {
                "endpoint": FEED_PATH,
                "token": token,
                "expiresIn": seconds(self.config.token_ttl),
                "tokenHeader": TOKEN_HEADER,
            },
            "meta": {
                "generatedAt": generated.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "note": "Stream tokens expire; request a new one when the feed answers 403.",
            },
        }
        return 200, body, []
