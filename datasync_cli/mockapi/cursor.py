"""The service's cursor: unsigned base64 of compact JSON, decoded as leniently as the service."""

from __future__ import annotations

import base64
import binascii
import math
from dataclasses import dataclass

import orjson

CURSOR_VERSION = 2
_B64_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


class CursorFormatError(ValueError):
    """The text is not base64 of a cursor object."""


@dataclass(frozen=True)
class CursorPosition:
    """What a cursor carries: the last event's id and epoch-ms timestamp, and its expiry."""

    event_id: str
    ts_ms: int
    exp_ms: int


def encode_cursor(event_id: str, ts_ms: int, exp_ms: int) -> str:
    """Standard base64 with padding, as the service issues it."""
    raw = orjson.dumps({"id": event_id, "ts": ts_ms, "v": CURSOR_VERSION, "exp": exp_ms})
    return base64.b64encode(raw).decode("ascii")


def _number(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise CursorFormatError("not a number")
    return int(value)


def decode_cursor(text: str) -> CursorPosition:
    """Accepts standard and URL-safe base64, padded or not; anything else is a format error."""
    normal = text.replace("-", "+").replace("_", "/").rstrip("=")
    if not normal or not set(normal) <= _B64_CHARS or len(normal) % 4 == 1:
        raise CursorFormatError("not base64")
    try:
        raw = base64.b64decode(normal + "=" * (-len(normal) % 4), validate=True)
        data = orjson.loads(raw)
    except (binascii.Error, orjson.JSONDecodeError) as exc:
        raise CursorFormatError("not base64 JSON") from exc
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        raise CursorFormatError("not a cursor object")
    return CursorPosition(data["id"], _number(data.get("ts")), _number(data.get("exp")))
