"""The stream token: one shared by all readers, renewed before it expires, dropped when refused."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

from ..clock import Clock
from ..errors import SourceError
from ..settings import DEFAULTS
from .errors import RedirectRefusedError, StreamAccessDeniedError

DEFAULT_FEED_PATH = "/api/v1/events/d4ta/x7k9/feed"
DEFAULT_TOKEN_HEADER = "X-Stream-Token"
# After a token could not be had, ask again no more often than this.
RETRY_EVERY_S = 60.0
# Renew when less than this share of the token's life is left (at least 60 s, at most half).
RENEW_SHARE = 0.2
RENEW_MIN_S = 60.0

TokenOrigin = Literal["supplied", "issued"]
TokenIssuer = Callable[[], Mapping[str, Any]]
# Told of every change of token: ("token_obtained" | "token_renewed" | "token_refused", fields).
TokenEvents = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class StreamToken:
    """A token for the feed; `expires_at` is monotonic, and only an estimate when `estimated`."""

    value: str = field(repr=False)
    expires_at: float | None
    origin: TokenOrigin
    endpoint: str = DEFAULT_FEED_PATH
    header: str = DEFAULT_TOKEN_HEADER
    lifetime_s: float | None = None
    estimated: bool = False


class StreamTokens:
    """Hands every reader the same token; renews it once, ahead of expiry, when a key is known.

    When no token can be had (no key, access denied, repeated refusals) `current()` returns None
    and readers use the standard endpoint; a new token is tried at most every 60 s.
    """

    def __init__(
        self,
        clock: Clock,
        issue: TokenIssuer | None,
        supplied: str | None = None,
        token_ttl: float = DEFAULTS.token_ttl_s,
        retry_every_s: float = RETRY_EVERY_S,
        notify: TokenEvents | None = None,
    ) -> None:
        self._clock = clock
        self._notify = notify
        self._issue = issue
        self._ttl = token_ttl
        self._retry_every = retry_every_s
        self._lock = threading.Lock()
        self._renewed = threading.Condition(self._lock)
        self._renewing = False
        self._retry_at = float("-inf")
        self._rejections = 0
        self._token: StreamToken | None = None
        self._fatal: RedirectRefusedError | None = None
        self.last_problem: str | None = None
        self.issued = 0
        if supplied:
            self._token = StreamToken(
                supplied,
                clock.monotonic() + token_ttl,
                "supplied",
                lifetime_s=token_ttl,
                estimated=True,
            )

    def issue_in_background(self) -> bool:
        """Start asking for a token now, in a thread of its own, if there is none yet.

        At the start of a run the first page can then come from the standard endpoint while the
        token is on its way, instead of waiting one round trip for it."""
        with self._lock:
            if self._token is not None or self._issue is None or self._renewing:
                return False
            if self._clock.monotonic() < self._retry_at:
                return False
            self._renewing = True
        threading.Thread(target=self._renew_quietly, name="stream-token", daemon=True).start()
        return True

    def _renew_quietly(self) -> None:
        # Nobody waits on this thread: a stop or a failure is already recorded by _renew (its
        # `finally` clears the in-flight flag), and readers ask again when they need a token.
        try:
            self._renew()
        except Exception:  # StopRequestedError, or a transport error outside SourceError
            return

    def current(self, wait: bool = True) -> StreamToken | None:
        """The token to use now, renewed first when close to expiry; None when there is none.

        With `wait` False, a first token still being issued gives None instead of blocking."""
        if self._fatal is not None:
            raise self._fatal
        with self._lock:
            token = self._token
            now = self._clock.monotonic()
            if token is not None and not renewal_due(token, now, self._ttl):
                return token
            if self._issue is None or now < self._retry_at:
                return token  # nothing better to offer; an old token may still be accepted
            if self._renewing:
                if token is not None or not wait:
                    return token  # still valid while the renewal runs
                self._renewed.wait_for(lambda: not self._renewing)
                if self._fatal is not None:
                    raise self._fatal
                return self._token
            self._renewing = True
        return self._renew()

    def renew_after_rejection(
        self, rejected: StreamToken, code: str | None = None
    ) -> StreamToken | None:
        """The service refused `rejected`: drop it and try once for a new one."""
        with self._lock:
            if self._token is not None and self._token.value != rejected.value:
                return self._token  # another reader already replaced it
            if self._token is None:
                # Another reader already dropped this token: one refusal, not a second.
                return self._wait_for_renewal_locked()
            may_renew = self._issue is not None and self._clock.monotonic() >= self._retry_at
            # Now its true end is known: a supplied token's age never was.
            self._event("token_refused", code=code or "INVALID_STREAM_TOKEN", refused="token",
                        origin=rejected.origin, renewable=may_renew)
            self._token = None
            self._rejections += 1
            if self._rejections > 1:
                self._give_up_locked("the service refused a freshly issued stream token")
                return None
            if self._issue is None:
                self.last_problem = "stream token refused; no API key to ask for another"
                return None
            if not may_renew:
                return None  # the last try failed moments ago; last_problem says why
            if self._renewing:
                return self._wait_for_renewal_locked()
            self._renewing = True
        return self._renew()

    def _wait_for_renewal_locked(self) -> StreamToken | None:
        if self._renewing:
            self._renewed.wait_for(lambda: not self._renewing)
        if self._fatal is not None:
            raise self._fatal
        return self._token

    def accepted(self, token: StreamToken) -> None:
        """The feed answered to `token`: earlier refusals were not a pattern."""
        with self._lock:
            if self._token is not None and self._token.value == token.value:
                self._rejections = 0

    def disable(self, reason: str, code: str | None = None) -> None:
        """The feed is out of reach for now (for example it answered 404)."""
        with self._lock:
            if self._token is not None:
                self._event("token_refused", code=code, refused="token",
                            origin=self._token.origin, renewable=False)
            self._token = None
            self._give_up_locked(reason)

    def seconds_left(self) -> float | None:
        """Seconds until the token expires (an estimate for a supplied one); None when unknown."""
        token = self._token
        if token is None or token.expires_at is None:
            return None
        return max(0.0, token.expires_at - self._clock.monotonic())

    def origin(self) -> TokenOrigin | None:
        token = self._token
        return token.origin if token is not None else None

    def _renew(self) -> StreamToken | None:
        assert self._issue is not None
        fresh: StreamToken | None = None
        problem = "the stream-access answer held no token"
        try:
            fresh = token_from_answer(self._issue(), self._clock.monotonic(), self._ttl)
        except StreamAccessDeniedError as exc:
            problem = f"no stream token: {exc.message}"
            self._event("token_refused", code=exc.code, refused="request", origin="issued",
                        renewable=False, still_held=self._token is not None)
        except RedirectRefusedError as exc:
            self._fatal = exc  # every reader stops on it: see current()
            raise
        except SourceError as exc:
            problem = f"no stream token: {exc.message}"
        finally:
            with self._lock:
                self._renewing = False
                if fresh is not None:
                    self._token = fresh
                    self.issued += 1
                    self.last_problem = None
                    self._event(
                        "token_obtained" if self.issued == 1 else "token_renewed",
                        expires_in_s=fresh.lifetime_s,
                        expires_at=_wall_iso(self._clock.wall() + (fresh.lifetime_s or 0)),
                        lifetime_known=not fresh.estimated,
                    )
                else:
                    self.last_problem = problem
                    self._retry_at = self._clock.monotonic() + self._retry_every
                self._renewed.notify_all()
                result = self._token
        return result

    def upper_bound(self) -> bool:
        """Whether seconds_left() is only an upper bound (a supplied token of unknown age)."""
        token = self._token
        return token is not None and token.origin == "supplied" and token.estimated

    def usable(self) -> bool:
        """Whether readers have a token to try now (else they use the standard endpoint)."""
        return self._token is not None

    def _event(self, name: str, **fields: Any) -> None:
        if self._notify is not None:
            self._notify(name, fields)

    def _give_up_locked(self, reason: str) -> None:
        self.last_problem = reason
        self._retry_at = self._clock.monotonic() + self._retry_every
        self._rejections = 0


def _wall_iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="seconds")


# What a token answer may carry: a token fit for a header value, a header name that is not one
# of ours (a hostile answer naming X-API-Key would otherwise replace the key), a sane lifetime.
_TOKEN = re.compile(r"[\x21-\x7e]{1,4096}")
_HEADER = re.compile(r"X-[A-Za-z0-9-]{1,64}")
_OUR_HEADERS = frozenset({"x-api-key"})
MAX_TOKEN_LIFE_S = 86_400.0


def token_from_answer(body: Mapping[str, Any], now: float, ttl: float) -> StreamToken | None:
    """The token in a stream-access answer, or None when it holds no usable one."""
    access = body.get("streamAccess", body)
    if not isinstance(access, Mapping):
        return None
    value = access.get("token")
    if not isinstance(value, str) or not _TOKEN.fullmatch(value):
        return None
    expires_in = access.get("expiresIn")
    life = ttl
    known = False
    if isinstance(expires_in, (int, float)) and not isinstance(expires_in, bool):
        known = 0 < expires_in <= MAX_TOKEN_LIFE_S
        life = float(expires_in) if known else ttl
    endpoint = access.get("endpoint")
    header = access.get("tokenHeader")
    if not (isinstance(header, str) and _HEADER.fullmatch(header)
            and header.lower() not in _OUR_HEADERS):
        header = DEFAULT_TOKEN_HEADER
    return StreamToken(
        value,
        now + life,
        "issued",
        endpoint=endpoint if isinstance(endpoint, str) and endpoint.isprintable() and endpoint
        else DEFAULT_FEED_PATH,
        header=header,
        lifetime_s=life,
        estimated=not known,
    )


def renewal_due(token: StreamToken, now: float, ttl: float) -> bool:
    """Whether to renew now: less than a fifth of the token's life left (at least 60 s, at
    most half of it)."""
    if token.expires_at is None:
        return False
    life = token.lifetime_s if token.lifetime_s is not None else ttl
    threshold = min(max(RENEW_SHARE * life, RENEW_MIN_S), 0.5 * life)
    return token.expires_at - now < threshold
