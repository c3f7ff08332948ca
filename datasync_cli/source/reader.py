"""One reader's way through its time range: which endpoint, and what to do on refusal.

Where to ask from (cursor or rebuilt position) is the RangeCursor's business; the reader picks
the endpoint (feed while a token works, else standard) and handles what the service refuses.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from ..clock import Clock
from ..errors import FatalSourceError, RetriableSourceError
from ..models import Page
from .client import ApiClient
from .errors import (
    CursorExpiredError,
    RateLimitedError,
    StreamAccessDeniedError,
    TokenRejectedError,
)
from .feedthrottle import FeedThrottle
from .pagination import STUCK_HINT, FeedRequest, RangeCursor
from .ratebudget import RateBudget
from .retry import RetryPolicy
from .token import StreamToken, StreamTokens


class RangeReader:
    """Fetches the next page of a range: the feed while a token works, else the standard
    endpoint, always from the range's position (never skipping, never restarting)."""

    def __init__(
        self,
        client: ApiClient,
        tokens: StreamTokens,
        budget: RateBudget,
        throttle: FeedThrottle,
        retry: RetryPolicy,
        clock: Clock,
        stop: threading.Event | None,
        page_size: int,
    ) -> None:
        self._client = client
        self._tokens = tokens
        self._budget = budget
        self._throttle = throttle
        self._retry = retry
        self._clock = clock
        self._stop = stop
        self._page_size = page_size

    def fetch(
        self, cursor: RangeCursor, *, wait_for_token: bool = True, priority: float = 0.0
    ) -> Page:
        """The page after the range's position; Page.endpoint says which endpoint produced it.

        Without `wait_for_token`, a token still being issued sends this page to the standard
        endpoint rather than waiting for it. Among readers waiting for the feed, the one with
        the highest `priority` (the most left to read) goes first."""
        token = self._tokens.current(wait=wait_for_token)
        if token is None and not wait_for_token:
            early = self._early_standard(cursor)
            if early is not None:
                return early
            token = self._tokens.current()
        page = self._from_feed(cursor, token, priority) if token is not None else None
        if page is None:
            page = self._from_standard(cursor)
        return page

    # The feed

    def _from_feed(
        self, cursor: RangeCursor, token: StreamToken, priority: float
    ) -> Page | None:
        """A feed page, or None when the feed cannot be used now."""
        request = cursor.feed_request()
        current: StreamToken | None = token
        while current is not None:
            try:
                page = self._feed_once(current, request, priority)
            except CursorExpiredError as exc:
                if request.cursor is None:
                    raise FatalSourceError(
                        f"the feed refused a request without a cursor: {exc.message}"
                    ) from exc
                request = cursor.feed_request(keep_cursor=False)
                continue
            except TokenRejectedError as exc:
                current = self._tokens.renew_after_rejection(current, exc.code)
                continue
            except StreamAccessDeniedError as exc:
                self._tokens.disable(exc.message, exc.code)
                return None
            self._tokens.accepted(current)
            return page
        return None

    def _feed_once(self, token: StreamToken, request: FeedRequest, priority: float) -> Page:
        def attempt() -> Page:
            sent_at = self._throttle.acquire(self._stop, priority)
            try:
                page = self._client.feed_page(
                    token, request.cursor, request.since_ms, request.until_ms, self._page_size
                )
            except RateLimitedError as exc:
                self._throttle.on_throttled(exc.retry_after, sent_at)
                raise
            except BaseException:
                self._throttle.release(sent_at)
                raise
            self._throttle.on_success(self._clock.monotonic() - sent_at, sent_at)
            return page

        return self._retry.call(attempt, endpoint="the feed")

    # The standard endpoint

    def _now_ms(self) -> int:
        return int(self._clock.wall() * 1000)

    def _from_standard(self, cursor: RangeCursor) -> Page:
        sent = cursor.standard_cursor(self._now_ms())
        try:
            page = self._standard_once(sent)
        except CursorExpiredError as exc:
            # Expired cursors carry nothing we lack: rebuild the same position and go on at once.
            fresh = cursor.standard_cursor(self._now_ms(), keep_cursor=False)
            if fresh is None or sent is None:
                raise FatalSourceError(
                    f"the API refused a cursor and there is no position to rebuild: {exc.message}"
                ) from exc
            try:
                page = self._standard_once(fresh)
            except CursorExpiredError as again:
                raise FatalSourceError(
                    f"the API refused a freshly built cursor: {again.message}", STUCK_HINT
                ) from again
        return page

    def _early_standard(self, cursor: RangeCursor) -> Page | None:
        """One try at the standard endpoint while the first token is on its way; None when it
        fails in any way that waiting would cure (its window spent, a timeout): the token is
        then the quicker way."""
        sent = cursor.standard_cursor(self._now_ms())
        started = self._clock.monotonic()
        try:
            page = self._standard_attempt(sent)
        except (RetriableSourceError, CursorExpiredError):
            return None
        # The feed's first requests can be spread over this round trip instead of sent at once.
        self._throttle.expect_latency(self._clock.monotonic() - started)
        return page

    def _standard_once(self, cursor: str | None) -> Page:
        return self._retry.call(
            lambda: self._standard_attempt(cursor), endpoint="the events endpoint"
        )

    def _standard_attempt(self, cursor: str | None) -> Page:
        self._budget.acquire(self._stop)
        answered = False

        def observe(headers: Mapping[str, str]) -> None:
            nonlocal answered
            answered = True
            self._budget.observe(headers)

        try:
            return self._client.events_page(cursor, self._page_size, on_headers=observe)
        except RateLimitedError as exc:
            self._budget.pause(exc.retry_after)
            raise
        finally:
            if not answered:
                self._budget.observe({})
