"""Reading the timing headers of the service liberally (relative seconds, epochs, HTTP dates)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

# Values above these are absolute times, not durations; seen from other deployments.
_EPOCH_S = 1e9
_EPOCH_MS = 1e12


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def delay_seconds(value: Any, now_wall: float) -> float | None:
    """A delay given as relative seconds, an epoch (s or ms) or an HTTP date; never negative.

    None when the value says nothing usable (unparseable, negative): callers then wait a short
    default. A far-future date is a long delay, which the caller's cap turns into a stop."""
    number = _number(value.strip() if isinstance(value, str) else value)
    if number is None:
        if not isinstance(value, str) or not value.strip():
            return None
        try:
            when = parsedate_to_datetime(value.strip())
            if when.tzinfo is None:
                return None
            return max(0.0, when.timestamp() - now_wall)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    if number < 0:
        return None
    if number > _EPOCH_MS:
        number = number / 1000.0 - now_wall
    elif number > _EPOCH_S:
        number -= now_wall
    return max(0.0, number)


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by name, case-insensitively even when `headers` is a plain dict."""
    value = headers.get(name)
    if value is not None:
        return value
    wanted = name.lower()
    for key, found in headers.items():
        if key.lower() == wanted:
            return found
    return None


def header_int(headers: Mapping[str, str], name: str) -> int | None:
    number = _number(header(headers, name))
    return None if number is None else int(number)


def retry_after(headers: Mapping[str, str], body: Any, now_wall: float) -> float | None:
    """How long a 429 asks us to wait: Retry-After, else the body's hint, else the window reset."""
    found = delay_seconds(header(headers, "Retry-After"), now_wall)
    if found is not None:
        return found
    if isinstance(body, dict):
        limit = body.get("rateLimit")
        if isinstance(limit, dict):
            for key in ("retryAfter", "reset"):
                found = delay_seconds(limit.get(key), now_wall)
                if found is not None:
                    return found
    return delay_seconds(header(headers, "X-RateLimit-Reset"), now_wall)
