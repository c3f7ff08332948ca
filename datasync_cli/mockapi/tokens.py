"""Stream tokens: random, expiring, and never revoked by issuing another."""

from __future__ import annotations

import secrets
import threading


class StreamTokens:
    """The tokens issued so far and when each expires (monotonic seconds)."""

    def __init__(self, ttl_s: float) -> None:
        self._ttl_s = ttl_s
        self._expiry: dict[str, float] = {}
        self._lock = threading.Lock()

    def issue(self, now: float) -> str:
        token = secrets.token_hex(32)
        with self._lock:
            self._expiry = {t: exp for t, exp in self._expiry.items() if exp > now}
            self._expiry[token] = now + self._ttl_s
        return token

    def valid(self, token: str | None, now: float) -> bool:
        if not token:
            return False
        with self._lock:
            expiry = self._expiry.get(token)
        return expiry is not None and now < expiry
