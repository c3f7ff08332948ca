"""The service's cursor: unsigned base64 of compact JSON naming the last event of a page.

The service takes the position from `ts` and `id` only, so a cursor can be built for any
position; this is how a reader resumes after its cursor expired.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from ..models import Position
from ..settings import DEFAULTS

CURSOR_VERSION = 2
DEFAULT_CURSOR_TTL_MS = int(DEFAULTS.cursor_ttl_s * 1000)


def encode_cursor(event_id: str, ts_ms: int, exp_ms: int) -> str:
    """Encode the fields in the service's own layout (standard alphabet, padded)."""
    payload = {"id": event_id, "ts": ts_ms, "v": CURSOR_VERSION, "exp": exp_ms}
    raw = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.b64encode(raw).decode("ascii")


def decode_cursor(cursor: str | None) -> dict[str, Any] | None:
    """The cursor's JSON object; accepts both alphabets, with or without padding; None if not."""
    if not cursor or not isinstance(cursor, str):
        return None
    text = cursor.strip().replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        raw = base64.b64decode(text, validate=True)
        value = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def cursor_position(cursor: str | None) -> Position | None:
    """The (ts, id) a cursor points after, or None when it does not carry one."""
    fields = decode_cursor(cursor)
    if fields is None:
        return None
    ts, event_id = fields.get("ts"), fields.get("id")
    if isinstance(ts, bool) or not isinstance(ts, (int, float)) or not isinstance(event_id, str):
        return None
    return Position(ts_ms=int(ts), event_id=event_id)


def forge_cursor(position: Position, now_ms: int, ttl_ms: int = DEFAULT_CURSOR_TTL_MS) -> str:
    """A fresh cursor for `position`, carrying the same fields the service's own would."""
    return encode_cursor(position.event_id, position.ts_ms, now_ms + ttl_ms)
