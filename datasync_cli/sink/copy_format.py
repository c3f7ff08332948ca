"""Rows for `COPY ... FROM STDIN` in PostgreSQL's text format.

Only backslash, tab, newline and carriage return need escaping in a text-format field; every
other character, including other control characters and non-BMP text, is sent as UTF-8.
PostgreSQL text cannot hold NUL, so transform rejects records containing it before this point.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..models import Batch, Checkpoint, Event, Rejected

STAGING_COLUMNS = ("id", "event_type", "ts_us", "data")
NULL = "\\N"

_SPECIAL = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def escape_text(value: str | None) -> str:
    """One text-format field: NULL as \\N, the four special characters backslash-escaped."""
    if value is None:
        return NULL
    return value.translate(_SPECIAL)


def escape_json(data: str) -> str:
    """A compact JSON document as a field: JSON escapes control characters itself, so only
    backslashes need doubling (much cheaper than a translate over 350 bytes)."""
    return data.replace("\\", "\\\\")


def encode_rows(events: Iterable[Event]) -> bytes:
    """The staging rows of a batch (columns STAGING_COLUMNS), UTF-8 encoded."""
    special = _SPECIAL
    backslash, doubled = "\\", "\\\\"
    lines = [
        f"{e.id.translate(special)}\t"
        f"{NULL if e.event_type is None else e.event_type.translate(special)}\t"
        f"{e.ts_us}\t{e.data.replace(backslash, doubled)}\n"
        for e in events
    ]
    return "".join(lines).encode("utf-8")


def make_batch(
    events: list[Event], rejected: list[Rejected], checkpoint: Checkpoint, fetched: int = 0
) -> Batch:
    """A batch with its COPY rows encoded (in the caller's thread, not the writer's)."""
    return Batch(events, rejected, checkpoint, encode_rows(events), fetched)
