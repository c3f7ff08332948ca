"""Who may ask and how often: API keys, the standard endpoint's fixed window, stream tokens,
the feed's hidden throttle and the dashboard check in front of the token endpoint."""

from __future__ import annotations

import math
from http.cookies import CookieError, SimpleCookie
from urllib.parse import urlsplit

from ..clock import Clock
from .config import MockConfig
from .counters import MockCounters
from .limits import FixedWindow, TokenBucket, WindowVerdict
from .messages import Refusal, Request, error, unauthorized
from .routes import TOKEN_HEADER
from .tokens import StreamTokens


class Gate:
    """Refuses what the live service refuses, with its status, code and headers."""

    def __init__(self, config: MockConfig, clock: Clock, counters: MockCounters) -> None:
        self.config = config
        self.clock = clock
        self.counters = counters
        self._window = FixedWindow(config.rate_window)
        self._bucket = (
            TokenBucket(config.feed_rate, config.feed_burst) if config.feed_rate > 0 else None
        )
        self._tokens = StreamTokens(config.token_ttl)

    def authenticate(self, req: Request) -> tuple[str, int]:
        """The window key and its limit; the query-string key gets half the limit."""
        header = req.headers.get("x-api-key")
        if header:
            key, bucket, limit = header, header, self.config.rate_limit
        else:
            key = req.query.get("api_key", "")
            bucket, limit = "query:" + key, max(1, self.config.rate_limit // 2)
        if not key or (self.config.api_key is not None and key != self.config.api_key):
            raise unauthorized()
        return bucket, limit

    def count_in_window(self, bucket: str, limit: int) -> list[tuple[str, str]]:
        """Count one request of the standard endpoint: its X-RateLimit headers, or a 429."""
        verdict: WindowVerdict = self._window.hit(bucket, limit, self.clock.monotonic())
        headers = [
            ("X-RateLimit-Limit", str(verdict.limit)),
            ("X-RateLimit-Remaining", str(verdict.remaining)),
            ("X-RateLimit-Reset", str(verdict.reset_s)),
        ]
        if not verdict.allowed:
            self.counters.add("rate_limited")
            reset = verdict.reset_s
            raise Refusal(
                *error(
                    429,
                    "Too Many Requests",
                    f"Rate limit exceeded. Try again in {reset} seconds.",
                    "RATE_LIMIT_EXCEEDED",
                    rateLimit={"limit": limit, "remaining": 0, "reset": reset, "retryAfter": reset},
                ),
                [*headers, ("Retry-After", str(reset))],
            )
        return headers

    def admit_to_feed(self, req: Request, bucket: str) -> None:
        """A valid stream token, then the hidden throttle (when it is on)."""
        if not self._tokens.valid(req.headers.get(TOKEN_HEADER.lower()), self.clock.monotonic()):
            raise Refusal(
                *error(403, "Forbidden", "Invalid or expired stream token", "INVALID_STREAM_TOKEN")
            )
        if self._bucket is None:
            return
        wait = self._bucket.take(bucket, self.clock.monotonic())
        if wait > 0:
            self.counters.add("feed_throttled")
            seconds = max(1, math.ceil(wait))
            raise Refusal(
                *error(
                    429,
                    "Too Many Requests",
                    f"Rate limit exceeded. Try again in {seconds} seconds.",
                    "RATE_LIMIT_EXCEEDED",
                ),
                [("Retry-After", str(seconds))],
            )

    def issue_token(self, req: Request) -> str:
        """A new stream token for a request that looks like the dashboard, or a refusal."""
        key = req.headers.get("x-api-key")
        if not key or (self.config.api_key is not None and key != self.config.api_key):
            raise unauthorized()
        if self.config.no_stream_access or not looks_like_dashboard(req, key):
            message = "This endpoint requires dashboard access"
            raise Refusal(*error(403, "Forbidden", message, "DASHBOARD_REQUIRED"))
        token = self._tokens.issue(self.clock.monotonic())
        self.counters.add("tokens_issued")
        return token


def looks_like_dashboard(req: Request, key: str) -> bool:
    """A browser User-Agent, Origin and Referer of the host, and the key's cookie."""
    host = req.headers.get("host", "").lower()
    if not req.headers.get("user-agent", "").startswith("Mozilla/5.0") or not host:
        return False
    for name in ("origin", "referer"):
        parts = urlsplit(req.headers.get(name, ""))
        if parts.scheme not in ("http", "https") or parts.netloc.lower() != host:
            return False
    cookie = SimpleCookie()
    try:
        cookie.load(req.headers.get("cookie", ""))
    except CookieError:
        return False
    morsel = cookie.get("dashboard_api_key")
    return morsel is not None and morsel.value == key
