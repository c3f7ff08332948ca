"""One reader's way through its time range: which endpoint, which cursor, what to do on refusal."""

from __future__ import annotations

import threading
from collections.abc import Mapping

from ..clock import Clock
from ..errors import (
    CursorExpired,
    FatalSourceError,
    RetriableSourceError,
    StreamAccessDenied,
    TokenRejected,
)
from ..models import Checkpoint, Page, Position
from .client import ApiClient
from .cursor import DEFAULT_CURSOR_TTL_MS, cursor_position, forge_cursor
from .faults import RateLimited
from .feedthrottle import FeedThrottle
from .ratebudget import RateBudget
from .retry import RetryPolicy
from .token import StreamToken, StreamTokens

STUCK_HINT = "the service is misbehaving; rerun later: ingest resumes from its checkpoint"
# Same cursor back with hasMore this many times in a row means the service is not advancing.
STUCK_LIMIT = 2

FeedRequest = tuple[str | None, int | None, int | None]


class RangeReader:
    """Fetches the next page for a checkpoint: the feed while a token works, else the standard
    endpoint, always from the same position (never skipping, never restarting)."""

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
        cursor_ttl_ms: int = DEFAULT_CURSOR_TTL_MS,
    ) -> None:
        self._client = client
        self._tokens = tokens
        self._budget = budget
        self._throttle = throttle
        self._retry = retry
        self._clock = clock
        self._stop = stop
        self._page_size = page_size
        self._cursor_ttl_ms = cursor_ttl_ms
        self._repeats = 0

    def fetch(self, checkpoint: Checkpoint, *, wait_for_token: bool = True) -> Page:
        """The page after `checkpoint`; Page.endpoint says which endpoint produced it.

        Without `wait_for_token`, a token still being issued sends this page to the standard
        endpoint rather than waiting for it."""
        token = self._tokens.current(wait=wait_for_token)
        if token is None and not wait_for_token:
            early = self._early_standard(checkpoint)
            if early is not None:
                return early
            token = self._tokens.current()
        page = self._from_feed(checkpoint, token) if token is not None else None
        if page is None:
            page = self._from_standard(checkpoint)
        return page

    # The feed

    def _from_feed(self, checkpoint: Checkpoint, token: StreamToken) -> Page | None:
        """A feed page, or None when the feed cannot be used now."""
        request = self._feed_request(checkpoint, keep_cursor=True)
        rebuilt = request[0] is None
        current: StreamToken | None = token
        while current is not None:
            try:
                page = self._feed_once(current, *request)
            except CursorExpired as exc:
                if rebuilt:
                    raise FatalSourceError(
                        f"the feed refused a request without a cursor: {exc.message}"
                    ) from exc
                request, rebuilt = self._feed_request(checkpoint, keep_cursor=False), True
                continue
            except TokenRejected:
                current = self._tokens.renew_after_rejection(current)
                continue
            except StreamAccessDenied as exc:
                self._tokens.disable(exc.message)
                return None
            self._tokens.accepted(current)
            return self._guard(page, request[0])
        return None

    def _feed_request(self, checkpoint: Checkpoint, *, keep_cursor: bool) -> FeedRequest:
        if keep_cursor and checkpoint.cursor and checkpoint.endpoint == "feed":
            return checkpoint.cursor, checkpoint.lo_ms, checkpoint.hi_ms
        # No usable cursor: bound by the last stored instant, inclusive; the events read again
        # at that instant are duplicates the database's primary key absorbs, which makes ties safe.
        position = _position(checkpoint)
        until = position.ts_ms if position is not None else checkpoint.hi_ms
        return None, checkpoint.lo_ms, until

    def _feed_once(
        self, token: StreamToken, cursor: str | None, since: int | None, until: int | None
    ) -> Page:
        def attempt() -> Page:
            sent_at = self._throttle.acquire(self._stop)
            try:
                page = self._client.feed_page(token, cursor, since, until, self._page_size)
            except RateLimited as exc:
                self._throttle.on_throttled(exc.retry_after, sent_at)
                raise
            except BaseException:
                self._throttle.release()
                raise
            self._throttle.on_success(self._clock.monotonic() - sent_at, sent_at)
            return page

        return self._retry.call(attempt, endpoint="the feed")

    # The standard endpoint

    def _from_standard(self, checkpoint: Checkpoint) -> Page:
        cursor = self._standard_cursor(checkpoint, keep_cursor=True)
        try:
            page = self._standard_once(cursor)
        except CursorExpired as exc:
            # Expired cursors carry nothing we lack: rebuild the same position and go on at once.
            fresh = self._standard_cursor(checkpoint, keep_cursor=False)
            if fresh is None or cursor is None:
                raise FatalSourceError(
                    f"the API refused a cursor and there is no position to rebuild: {exc.message}"
                ) from exc
            try:
                page = self._standard_once(fresh)
            except CursorExpired as again:
                raise FatalSourceError(
                    f"the API refused a freshly built cursor: {again.message}", STUCK_HINT
                ) from again
            cursor = fresh
        return self._guard(page, cursor)

    def _standard_cursor(self, checkpoint: Checkpoint, *, keep_cursor: bool) -> str | None:
        if keep_cursor and checkpoint.cursor and checkpoint.endpoint == "standard":
            return checkpoint.cursor
        now_ms = int(self._clock.wall() * 1000)
        position = _position(checkpoint)
        if position is not None:
            return forge_cursor(position, now_ms, self._cursor_ttl_ms)
        if checkpoint.hi_ms is not None:
            # Just above the range's top: every event at hi_ms itself is included.
            return forge_cursor(Position(checkpoint.hi_ms + 1, ""), now_ms, self._cursor_ttl_ms)
        return None

    def _early_standard(self, checkpoint: Checkpoint) -> Page | None:
        """One try at the standard endpoint while the first token is on its way; None when it
        fails in any way that waiting would cure (its window spent, a timeout): the token is
        then the quicker way."""
        cursor = self._standard_cursor(checkpoint, keep_cursor=True)
        try:
            page = self._standard_attempt(cursor)
        except (RetriableSourceError, CursorExpired):
            return None
        return self._guard(page, cursor)

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
        except RateLimited as exc:
            self._budget.pause(exc.retry_after)
            raise
        finally:
            if not answered:
                self._budget.observe({})

    # Both

    def _guard(self, page: Page, sent: str | None) -> Page:
        """Refuse to loop on a service that hands back the cursor it was given."""
        stuck = page.has_more and (
            (sent is not None and page.next_cursor == sent)
            or (not page.records and page.next_cursor is None)
        )
        self._repeats = self._repeats + 1 if stuck else 0
        if self._repeats >= STUCK_LIMIT:
            self._repeats = 0
            raise FatalSourceError(
                f"the {page.endpoint} endpoint is not advancing: {STUCK_LIMIT} pages in a row "
                "said hasMore but gave back the cursor sent (or nothing to go on); "
                "stopping instead of looping",
                STUCK_HINT,
            )
        return page


def _position(checkpoint: Checkpoint) -> Position | None:
    """The last stored event, or failing that the position a saved cursor names."""
    return checkpoint.position or cursor_position(checkpoint.cursor)
