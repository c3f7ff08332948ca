"""Reading the service's JSON: liberal in what it accepts, bounded in what it trusts.

Ordinary pages take the fast path (orjson). Bodies holding numbers a double cannot carry
exactly (long digit runs, large exponents) are read with exact decimals instead, so `data` keeps
what was served. A body that neither parser can read whole (a record nested thousands of levels
deep, say) is split into its records, and each record that still cannot be read becomes an
`UnreadableRecord` for the transform to reject, so one record never costs its page.
"""

from __future__ import annotations

import json
import math
import re
import threading
from decimal import Decimal
from typing import Any

import orjson

from ..errors import RetriableSourceError
from ..models import Endpoint, Page, RecordTexts, UnreadableRecord

BOM = b"\xef\xbb\xbf"
MAX_CURSOR_CHARS = 8192
MAX_TOTAL = 10**15  # far above any real stream, far below anything PostgreSQL's BIGINT refuses
_INT_DIGITS_AS_INT = 4000  # below Python's int-from-text limit (4300 digits)

# orjson reads these silently wrong: integers beyond 64 bits and mantissas of more than 15
# significant digits (rounded to a double), and exponents below -307 (read as 0.0). Mapping every
# digit and the decimal point to 0, and the characters that end a number to ';', turns the
# first two into a run of zeros and the third into "0e-000...;" (a hex string such as a UUID's
# "3e-1234" is followed by a letter, a dash or a quote, never by ';'): plain substring
# searches, far cheaper than a regex. Exponents above 308 make orjson fail, which is caught.
_ENDS = b",]} \t\r\n"
_TO_ZERO = bytes.maketrans(b"123456789." + _ENDS, b"0" * 10 + b";" * len(_ENDS))
_LONG_NUMBER = b"0" * 16
_NEGATIVE_DIGITS = re.compile(rb"-000+;")
_EXPONENT_MARKS = (b"0e", b"0E")

_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{},]', re.S)


def decode_body(content: bytes) -> Any:
    """The JSON value of a body, or None when it is not JSON (truncated, garbled)."""
    if content.startswith(BOM):
        content = content[len(BOM) :]
    if not _needs_exact(content):
        try:
            return orjson.loads(content)
        except orjson.JSONDecodeError:
            pass
    try:
        return _exact_loads(content)
    except (ValueError, RecursionError):
        return _by_record(content)


def _needs_exact(content: bytes) -> bool:
    zeroed = content.translate(_TO_ZERO)
    return _LONG_NUMBER in zeroed or _tiny_exponent(zeroed)


def _tiny_exponent(zeroed: bytes) -> bool:
    """Whether a number with an exponent of -100 or below is in the (translated) body: a
    search for three or more digits after a minus and before a number's end (rare: negative
    integers), each found then checked for the "0e" or "0E" in front of it."""
    return any(
        zeroed[found.start() - 2 : found.start()] in _EXPONENT_MARKS
        for found in _NEGATIVE_DIGITS.finditer(zeroed)
    )


def _int(text: str) -> int | Decimal:
    return int(text) if len(text) <= _INT_DIGITS_AS_INT else Decimal(text)


def _exact_loads(content: bytes | str) -> Any:
    """Stdlib json with exact decimals; lone surrogates are kept so the transform can name
    them as the reason a record is refused. NaN and Infinity, which the stdlib accepts, are
    read as Decimal too: no decoded body ever holds a float that is not finite."""
    text = content if isinstance(content, str) else content.decode("utf-8", "surrogateescape")
    return json.loads(text, parse_float=Decimal, parse_int=_int, parse_constant=Decimal)


def _by_record(content: bytes) -> Any:
    """The envelope read with its records one by one; None when even that fails."""
    span = _data_span(content)
    if span is None:
        return None
    start, end = span
    try:
        envelope = _exact_loads(content[:start] + b"[]" + content[end:])
    except (ValueError, RecursionError):
        return None
    if not isinstance(envelope, dict):
        return None
    records: list[Any] = []
    for raw in _elements(content[start:end]):
        try:
            records.append(_exact_loads(raw))
        except RecursionError:
            records.append(UnreadableRecord(_text(raw), "record nested too deeply to read"))
        except ValueError as exc:
            records.append(UnreadableRecord(_text(raw), f"record is not valid JSON: {exc}"))
    envelope["data"] = records
    return envelope


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _data_span(content: bytes) -> tuple[int, int] | None:
    """Byte offsets of the top-level "data" array, brackets included."""
    depth = 0
    after_data_key = False
    start: int | None = None
    for match in _TOKENS.finditer(content):
        token = match.group()
        if token[:1] == b'"':
            after_data_key = depth == 1 and token == b'"data"'
            continue
        if token in (b"[", b"{"):
            if after_data_key and depth == 1 and token == b"[" and start is None:
                start = match.start()
            depth += 1
        elif token in (b"]", b"}"):
            depth -= 1
            if start is not None and depth == 1:
                return start, match.end()
        after_data_key = False
    return None


def _elements(array: bytes) -> list[bytes]:
    """The raw text of each element of a JSON array given with its brackets."""
    elements: list[bytes] = []
    depth = 0
    begin = 0
    for match in _TOKENS.finditer(array):
        token = match.group()
        if token[:1] == b'"':
            continue
        if token in (b"[", b"{"):
            depth += 1
            if depth == 1:
                begin = match.end()
        elif token in (b"]", b"}"):
            depth -= 1
            if depth == 0:
                elements.append(array[begin : match.start()])
                break
        elif depth == 1:  # a comma between two elements
            elements.append(array[begin : match.start()])
            begin = match.end()
    return [e.strip() for e in elements if e.strip()]


def parse_page(body: Any, endpoint: Endpoint, request_id: str | None = None) -> Page:
    """The envelope, read liberally; a body without a `data` list is garbled and retriable.

    A cursor PostgreSQL could not store, or a total that is no count, is a fault of that page:
    the cursor is dropped (the position is rebuilt from the last stored event) and the total
    treated as unknown."""
    if not isinstance(body, dict) or not isinstance(body.get("data"), (list, RecordTexts)):
        raise RetriableSourceError("the API sent a truncated or garbled page (no data list)")
    pagination = body.get("pagination")
    if not isinstance(pagination, dict):
        pagination = {}
    meta = body.get("meta")
    if not isinstance(meta, dict):
        meta = {}
    cursor = pagination.get("nextCursor", body.get("nextCursor"))
    next_cursor = cursor if _storable_cursor(cursor) else None
    has_more = _flag(pagination.get("hasMore", body.get("hasMore")))
    if has_more is None:
        has_more = isinstance(cursor, str) and bool(cursor)
    rid = meta.get("requestId")
    return Page(
        records=body["data"],
        next_cursor=next_cursor,
        has_more=has_more,
        total=_count(meta.get("total", body.get("total"))),
        endpoint=endpoint,
        request_id=rid if isinstance(rid, str) and rid.isprintable() else request_id,
    )


def _storable_cursor(value: Any) -> bool:
    if not isinstance(value, str) or not value or len(value) > MAX_CURSOR_CHARS:
        return False
    if not value.isprintable():
        return False  # NUL, control characters: no cursor of the service looks like that
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def _count(value: Any) -> int | None:
    """A non-negative whole number within reason, else None (unknown)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Decimal) and not value.is_finite():
        return None
    if value < 0 or value > MAX_TOTAL or value != int(value):
        return None
    return int(value)


def _flag(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


class ParseSlots:
    """At most `slots` pages decoded and not yet handed on, across every reader thread.

    A parsed page is tens of megabytes of small objects; on a busy machine every reader could
    hold one at once. A thread takes a slot before it decodes a page and keeps it until it says
    `done` (the page turned into a batch), so memory stays flat however the CPU is shared."""

    def __init__(self, slots: int) -> None:
        self._free = threading.BoundedSemaphore(max(1, slots))
        self._held = threading.local()

    def hold(self) -> None:
        if not getattr(self._held, "on", False):
            self._free.acquire()
            self._held.on = True

    def done(self) -> None:
        if getattr(self._held, "on", False):
            self._held.on = False
            self._free.release()
