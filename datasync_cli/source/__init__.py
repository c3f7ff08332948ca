"""The source side: everything that talks HTTP to the DataSync API (the only user of requests)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from ..clock import Clock, SystemClock
from ..models import Checkpoint, Page
from ..settings import DEFAULTS, Settings
from .client import ApiClient
from .cursor import cursor_position, decode_cursor, encode_cursor, forge_cursor
from .envelope import ParseSlots, decode_body, parse_page
from .errors import RateLimitedError, StopRequestedError
from .feedthrottle import FeedThrottle
from .pagination import Advance, FeedRequest, RangeCursor
from .ratebudget import RateBudget
from .reader import RangeReader
from .retry import RetryPolicy
from .token import StreamToken, StreamTokens, TokenEvents

__all__ = [
    "Advance",
    "ApiClient",
    "FeedRequest",
    "FeedThrottle",
    "ParseSlots",
    "RangeCursor",
    "RangeReader",
    "RateBudget",
    "RateLimitedError",
    "RetryPolicy",
    "Source",
    "SourceConfig",
    "SourceHealth",
    "StopRequestedError",
    "StreamToken",
    "StreamTokens",
    "TokenEvents",
    "cursor_position",
    "decode_body",
    "decode_cursor",
    "encode_cursor",
    "fetch_total",
    "forge_cursor",
    "open_source",
    "parse_page",
]

# Token requests are cheap to give up on: readers fall back to the standard endpoint.
TOKEN_ATTEMPTS = 3


@dataclass(frozen=True)
class SourceConfig:
    """What the source needs from the settings; secrets are kept out of the repr."""

    base_url: str
    api_key: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    page_size: int = DEFAULTS.page_size
    connect_timeout: float = DEFAULTS.connect_timeout_s
    read_timeout: float = DEFAULTS.read_timeout_s
    request_timeout: float = DEFAULTS.request_timeout_s
    max_body_mb: int = DEFAULTS.max_body_mb
    max_wait: float = DEFAULTS.max_wait_s
    max_attempts: int = DEFAULTS.max_attempts
    token_ttl: float = DEFAULTS.token_ttl_s
    readers: int = DEFAULTS.workers
    # Pages decoded at once across readers (None: no bound); see ParseSlots.
    parse_slots: int | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> SourceConfig:
        return cls(
            base_url=settings.require_api(),
            api_key=settings.api_key,
            token=settings.token,
            page_size=settings.page_size,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            request_timeout=settings.request_timeout,
            max_body_mb=settings.max_body_mb,
            max_wait=settings.max_wait,
            max_attempts=settings.max_attempts,
            token_ttl=settings.token_ttl,
            readers=settings.effective_workers(),
            parse_slots=DEFAULTS.parse_slots,
        )


@dataclass(frozen=True)
class SourceHealth:
    """A snapshot for the progress display and the summary."""

    retries: int
    rate_limited: int
    rate_wait_s: float
    feed_throttled: int
    feed_rate: float | None
    token_origin: str | None
    token_seconds_left: float | None
    token_problem: str | None
    token_left_is_bound: bool  # a supplied token's age is unknown: its time left is at most
    feed_usable: bool  # readers have a token to try, else they read the standard endpoint
    standard_requests_per_s: float | None  # what the standard endpoint's window allows


class Source:
    """The client and the state its readers share: token, rate budget, feed throttle, retries."""

    def __init__(
        self,
        config: SourceConfig,
        client: ApiClient,
        clock: Clock,
        stop: threading.Event | None,
        *,
        retry: RetryPolicy | None = None,
        tokens: StreamTokens | None = None,
        notify: TokenEvents | None = None,
    ) -> None:
        self.config = config
        self.client = client
        self._clock = clock
        self._stop = stop
        self.retry = retry or RetryPolicy(
            clock, stop, max_attempts=config.max_attempts, max_wait_s=config.max_wait
        )
        self.budget = RateBudget(clock, max_wait_s=config.max_wait)
        self.throttle = FeedThrottle(
            clock, max_concurrency=config.readers, max_wait_s=config.max_wait
        )
        token_retry = RetryPolicy(
            clock, stop, max_attempts=TOKEN_ATTEMPTS, max_throttled=3, max_wait_s=config.max_wait
        )
        issue = None
        if config.api_key:

            def issue() -> dict[str, Any]:
                return token_retry.call(client.request_stream_token, endpoint="stream-access")

        self.tokens = tokens or StreamTokens(
            clock, issue, config.token, config.token_ttl, notify=notify
        )

    def reader(self, page_size: int | None = None) -> RangeReader:
        """A reader for one time range; all readers share this source's pacing and token."""
        return RangeReader(
            self.client,
            self.tokens,
            self.budget,
            self.throttle,
            self.retry,
            self._clock,
            self._stop,
            page_size or self.config.page_size,
        )

    def lanes(self) -> int:
        """How many requests the source lets readers keep in flight: the feed's pace times its
        latency, or every reader while the feed is not in use (the standard endpoint's window
        is spent in bursts)."""
        if self.tokens.usable():
            return self.throttle.lanes()
        return self.config.readers

    def prepare(self) -> None:
        """Ask for a stream token in the background, so the first page need not wait for it."""
        self.tokens.issue_in_background()

    def probe(self, limit: int = 1) -> Page:
        """The newest `limit` events and meta.total, by the same paths a reader takes."""
        return self.reader(limit).fetch(RangeCursor(Checkpoint("probe")))

    def info(self) -> dict[str, Any]:
        """The API's self-description, retried on timeouts; proves URL and key."""
        return self.retry.call(self.client.info, endpoint="the API base")

    def health(self) -> SourceHealth:
        """Retries, 429s, waits and the token, for the display and the summary."""
        return SourceHealth(
            retries=self.retry.retries,
            rate_limited=self.budget.throttled + self.throttle.throttled,
            rate_wait_s=self.budget.waited_s + self.throttle.waited_s,
            feed_throttled=self.throttle.throttled,
            feed_rate=self.throttle.rate,
            token_origin=self.tokens.origin(),
            token_seconds_left=self.tokens.seconds_left(),
            token_problem=self.tokens.last_problem,
            token_left_is_bound=self.tokens.upper_bound(),
            feed_usable=self.tokens.usable(),
            standard_requests_per_s=self.budget.requests_per_s(),
        )

    def page_done(self) -> None:
        """The page this thread fetched last has been handed on: its parse slot is free."""
        self.client.page_done()

    def close(self) -> None:
        self.client.close()


def open_source(
    config: SourceConfig,
    clock: Clock,
    stop: threading.Event | None,
    notify: TokenEvents | None = None,
) -> Source:
    """Build the client and the shared reader state for one run."""
    client = ApiClient(
        config.base_url,
        config.api_key,
        connect_timeout=config.connect_timeout,
        read_timeout=config.read_timeout,
        request_timeout=config.request_timeout,
        max_body_bytes=config.max_body_mb << 20,
        pool_size=max(64, 2 * config.readers),
        parse_slots=ParseSlots(config.parse_slots) if config.parse_slots else None,
        clock=clock,
    )
    return Source(config, client, clock, stop, notify=notify)


def fetch_total(
    config: SourceConfig, clock: Clock | None = None, stop: threading.Event | None = None
) -> int | None:
    """meta.total as the API reports it now (what `verify` compares against); None if absent."""
    source = open_source(config, clock or SystemClock(), stop)
    try:
        source.info()  # fails at once on a wrong URL or key, where the probe would retry
        return source.probe().total
    finally:
        source.close()
