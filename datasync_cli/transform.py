"""Pure record validation: raw API record -> Event or Rejected(reason). No I/O.

Timestamps are normalized to epoch microseconds (UTC). `data` keeps the record exactly as
received (orjson text), so the stored JSONB equals what the service sent. Records PostgreSQL
cannot hold (NUL characters, lone surrogates, non-finite numbers) are rejected with a reason
instead of failing the batch they arrive in.

A non-string `type` is kept as its compact JSON text in `event_type` (the exact value is still in
`data`), so the column stays a plain string without losing information.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from dateutil import parser as dateutil_parser

from .exactjson import MAX_DEPTH, NonFiniteError, TooDeepError, dumps_exact, walk
from .models import Event, Position, RecordTexts, Rejected, UnreadableRecord
from .recordtexts import record_texts

__all__ = [
    "MAX_TS_US",
    "MIN_TS_US",
    "TimestampError",
    "event_position",
    "parse_timestamp",
    "transform_page",
    "transform_record",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_EPOCH_NAIVE = datetime(1970, 1, 1)
_ONE_US = timedelta(microseconds=1)
# Years 1..9999: what Python's datetime can show and well inside PostgreSQL's timestamptz range.
MIN_TS_US = -62_135_596_800_000_000
MAX_TS_US = 253_402_300_799_999_999

# Magnitude heuristic for bare numbers: 1e11 s is year 5138, 1e14 ms is year 5138, and so on,
# so each unit covers every plausible date without overlapping the next.
_SECONDS_BELOW = 10**11
_MILLIS_BELOW = 10**14
_MICROS_BELOW = 10**17

# Anything this large is out of range in every unit; checked before building huge integers.
_MAGNITUDE_LIMIT = 10**22
_TEXT_LIMIT = 100
_REPR_LIMIT = 60
_ID_LIMIT = 200
# PostgreSQL's b-tree index refuses keys over about 2700 bytes; ids far below that are stored.
_ID_MAX_CHARS = 1024
# JSONB numbers are numeric: up to 131072 digits before the decimal point, 16383 after.
_NUMERIC_INT_DIGITS = 131072
_NUMERIC_SCALE = 16383
_RAW_DEPTH = 100_000  # the text of a rejected record is kept whatever its depth

# The service's own form, read a minute at a time: "2026-01-27T19:19:" maps to its instant.
_ISO_MINUTE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:", re.ASCII)
_minute_starts: dict[str, int] = {}

# Two distinct defaults reveal a date that dateutil completed from its default (e.g. "March 5").
_DEFAULT_A = datetime(2001, 1, 1)
_DEFAULT_B = datetime(2002, 2, 2)


class TimestampError(ValueError):
    """A timestamp that cannot be turned into an instant; `reason` is short and operator-facing."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _short_repr(value: Any) -> str:
    try:
        text = repr(value)
    except ValueError:  # an integer too long to print
        return f"<{type(value).__name__} too large to show>"
    return text if len(text) <= _REPR_LIMIT else text[: _REPR_LIMIT - 3] + "..."


def _checked(ts_us: int, value: Any) -> int:
    if not MIN_TS_US <= ts_us <= MAX_TS_US:
        raise TimestampError(f"timestamp out of range: {_short_repr(value)}")
    return ts_us


def _from_int(number: int, original: Any) -> int:
    magnitude = abs(number)
    if magnitude >= _MAGNITUDE_LIMIT:
        raise TimestampError(f"timestamp out of range: {_short_repr(original)}")
    if magnitude < _SECONDS_BELOW:
        us = number * 1_000_000
    elif magnitude < _MILLIS_BELOW:
        us = number * 1000
    elif magnitude < _MICROS_BELOW:
        us = number
    else:
        us = number // 1000
    return _checked(us, original)


def _from_decimal(number: Decimal, original: Any) -> int:
    if not number.is_finite():
        raise TimestampError(f"unparseable timestamp: {_short_repr(original)}")
    magnitude = abs(number)
    if magnitude >= _MAGNITUDE_LIMIT:
        raise TimestampError(f"timestamp out of range: {_short_repr(original)}")
    if magnitude < _SECONDS_BELOW:
        scaled = number * 1_000_000
    elif magnitude < _MILLIS_BELOW:
        scaled = number * 1000
    elif magnitude < _MICROS_BELOW:
        scaled = number
    else:
        scaled = number / 1000
    # Sub-microsecond digits are dropped towards the past, like integer division.
    return _checked(int(scaled.to_integral_value(rounding="ROUND_FLOOR")), original)


def _from_datetime(moment: datetime, original: Any) -> int:
    if moment.tzinfo is None:
        return _checked((moment - _EPOCH_NAIVE) // _ONE_US, original)
    return _checked((moment - _EPOCH) // _ONE_US, original)


def _from_text(text: str, original: Any) -> int:
    # Common forms first: the service's own, an ISO string ending in Z (fromisoformat on 3.10
    # rejects the Z), then digits; only the rare forms pay for stripping, Decimal and dateutil.
    if len(text) == 24 and text[23] == "Z":
        found = _iso_millis_z(text)
        if found is not None:
            return found
    if len(text) < 25 and text.isascii() and text.isdigit():
        return _from_int(int(text), original)
    try:
        if text[-1:] == "Z":
            return _checked((datetime.fromisoformat(text[:-1]) - _EPOCH_NAIVE) // _ONE_US, original)
        return _from_datetime(datetime.fromisoformat(text), original)
    except (ValueError, TypeError):  # TypeError: an offset followed by a Z
        pass
    return _from_rare_text(text.strip(), original)


def _iso_millis_z(text: str) -> int | None:
    """Epoch microseconds of "2026-01-27T19:19:13.629Z", the form the service writes, with
    each minute read once; None for anything else, which takes the general path."""
    minute_us = _minute_starts.get(text[:17])
    if minute_us is None:
        head = text[:17]
        if not _ISO_MINUTE.fullmatch(head):
            return None
        try:
            minute_us = (datetime.fromisoformat(head[:16]) - _EPOCH_NAIVE) // _ONE_US
        except ValueError:
            return None
        if len(_minute_starts) > 100_000:
            _minute_starts.clear()
        _minute_starts[head] = minute_us
    millis = text[17:19] + text[20:23]  # seconds and milliseconds
    if text[19] != "." or text[17] > "5" or not (millis.isascii() and millis.isdigit()):
        return None
    return minute_us + int(millis) * 1000


def _from_rare_text(text: str, original: Any) -> int:
    if not text:
        raise TimestampError("empty timestamp")
    if len(text) > _TEXT_LIMIT:
        raise TimestampError(f"unparseable timestamp: {_short_repr(original)}")
    digits = text[1:] if text[0] in "+-" else text
    if digits.isascii() and digits.isdigit():
        return _from_int(int(text), original)
    if text[-1] in "Zz":
        try:
            return _from_datetime(datetime.fromisoformat(text[:-1] + "+00:00"), original)
        except ValueError:
            pass
    else:
        try:
            return _from_datetime(datetime.fromisoformat(text), original)
        except ValueError:
            pass
    try:
        return _from_decimal(Decimal(text), original)
    except InvalidOperation:
        pass
    return _from_datetime(_parse_odd_text(text, original), original)


def _parse_odd_text(text: str, original: Any) -> datetime:
    """Forms fromisoformat rejects: other ISO variants, RFC 2822 and similar, via dateutil."""
    unparseable = TimestampError(f"unparseable timestamp: {_short_repr(original)}")
    try:
        return dateutil_parser.isoparse(text)
    except (ValueError, OverflowError, TypeError):
        pass
    if not any(ch.isdigit() for ch in text):
        raise unparseable
    try:
        first = dateutil_parser.parse(text, default=_DEFAULT_A)
        second = dateutil_parser.parse(text, default=_DEFAULT_B)
    except (ValueError, OverflowError, TypeError) as exc:
        raise unparseable from exc
    if first != second:
        # Year, month or day came from the default: the text is not a full date.
        raise unparseable
    return first


def parse_timestamp(value: Any) -> int:
    """Epoch microseconds (UTC) of a timestamp in any form the service was seen to send.

    Numbers are epoch milliseconds (the documented form); a magnitude heuristic also accepts
    seconds, microseconds and nanoseconds. Strings may be numeric or ISO 8601 (any offset,
    naive = UTC). Raises TimestampError with a short reason.
    """
    kind = type(value)
    if kind is int:
        return _from_int(value, value)
    if kind is str:
        return _from_text(value, value)
    if kind is float:
        if not math.isfinite(value):
            raise TimestampError(f"unparseable timestamp: {_short_repr(value)}")
        return _from_decimal(Decimal(repr(value)), value)
    if value is None:
        raise TimestampError("missing timestamp")
    if isinstance(value, bool):
        raise TimestampError(f"unparseable timestamp: {_short_repr(value)}")
    if isinstance(value, int):
        return _from_int(int(value), value)
    if isinstance(value, str):
        return _from_text(str(value), value)
    if isinstance(value, float):
        return parse_timestamp(float(value))
    if isinstance(value, Decimal):
        return _from_decimal(value, value)
    raise TimestampError(f"unparseable timestamp: {_short_repr(value)}")


def _raw_text(record: Any) -> str:
    """The record as ASCII JSON text, so NUL and lone surrogates survive as escapes in TEXT."""
    try:
        return dumps_exact(record, ascii_only=True, max_depth=_RAW_DEPTH, allow_nan=True)
    except (TypeError, ValueError):
        return json.dumps(f"<{type(record).__name__} that JSON cannot show>")


def _safe_id(value: Any) -> str | None:
    """An id fit for the rejected_events.event_id TEXT column, or None."""
    if type(value) is int:
        return str(value)
    if not isinstance(value, str) or not value:
        return None
    text: str = value
    if "\x00" in text:
        text = json.dumps(text, ensure_ascii=True)[1:-1]
    else:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = json.dumps(text, ensure_ascii=True)[1:-1]
    return text[:_ID_LIMIT]


def _reject(record: Any, reason: str, event_id: Any = None) -> Rejected:
    raw = _raw_text(record)
    return Rejected(
        raw=raw,
        reason=reason,
        event_id=_safe_id(event_id),
        identity=_identity(record, raw),
    )


def _identity(record: Any, raw: str) -> str:
    """What makes two rejected records one: their text without the timestamp, which the feed
    and the standard endpoint spell differently. Two different records sharing an id are two."""
    if isinstance(record, dict) and "timestamp" in record:
        return _raw_text({k: v for k, v in record.items() if k != "timestamp"})
    return raw


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _has_nul(record: Any) -> bool:
    return any(isinstance(v, str) and "\x00" in v for v in walk(record))


def _has_non_finite(record: Any) -> bool:
    return any(isinstance(v, float) and not math.isfinite(v) for v in walk(record))


def _beyond_numeric(record: Any) -> bool:
    """A number PostgreSQL's numeric (inside JSONB) cannot hold."""
    for v in walk(record):
        if isinstance(v, Decimal) and v.is_finite():
            exponent = int(v.as_tuple().exponent)
            if v.adjusted() >= _NUMERIC_INT_DIGITS or exponent < -_NUMERIC_SCALE:
                return True
    return False


def _exact_json(record: dict[str, Any]) -> tuple[str | None, str | None]:
    """JSON text for what orjson refuses: exact decimals, integers beyond 64 bits, records
    nested deeper than orjson writes."""
    try:
        text = dumps_exact(record)
    except TooDeepError:
        return None, f"record nested deeper than {MAX_DEPTH} levels"
    except NonFiniteError:
        return None, "record holds a non-finite number (NaN or Infinity)"
    except TypeError as err:
        return None, f"record is not JSON-serializable: {str(err)[:_REPR_LIMIT]}"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return None, "string holds a lone surrogate (not valid UTF-8)"
    if _beyond_numeric(record):
        return None, "number beyond what PostgreSQL's numeric type can hold"
    return text, None


def _content_problem(record: dict[str, Any]) -> tuple[str | None, str | None]:
    """(JSON text, None) when PostgreSQL can hold the record, else (None, reason)."""
    try:
        data = orjson.dumps(record).decode()
    except orjson.JSONEncodeError as exc:
        if "surrogates" in str(exc):
            return None, "string holds a lone surrogate (not valid UTF-8)"
        exact, problem = _exact_json(record)
        if exact is None:
            return None, problem
        data = exact
    # orjson escapes NUL as \u0000; a literal backslash-u0000 text can match too, so confirm.
    if "\\u0000" in data and _has_nul(record):
        return None, "string holds a NUL character (\\u0000), which PostgreSQL cannot store"
    # orjson writes NaN and Infinity as null; only a record with a null can hide one.
    if "null" in data and _has_non_finite(record):
        return None, "record holds a non-finite number (NaN or Infinity)"
    return data, None


def transform_record(record: Any) -> Event | Rejected:
    """One raw record -> Event, or Rejected with the first reason it cannot be stored."""
    return _transform(record, None)


def _transform(record: Any, text: str | None) -> Event | Rejected:
    """`text`, when given, is the record's JSON text, already known to be storable."""
    if type(record) is not dict:
        if isinstance(record, UnreadableRecord):
            return Rejected(raw=record.raw, reason=record.reason, identity=record.raw)
        if not isinstance(record, dict):
            return _reject(record, "record is not a JSON object")
        record = dict(record)

    raw_id = record.get("id")
    if type(raw_id) is str:
        if not raw_id.strip():
            return _reject(record, "empty id")
        if len(raw_id) > _ID_MAX_CHARS // 4 and _utf8_len(raw_id) > _ID_MAX_CHARS:
            return _reject(record, f"id longer than {_ID_MAX_CHARS} bytes", raw_id)
        event_id = raw_id
    elif raw_id is None:
        return _reject(record, "missing id" if "id" not in record else "id is null")
    elif type(raw_id) is int:
        event_id = str(raw_id)
    elif isinstance(raw_id, float) and math.isfinite(raw_id):
        event_id = repr(raw_id)
    elif isinstance(raw_id, Decimal) and raw_id.is_finite() and len(str(raw_id)) <= _ID_MAX_CHARS:
        event_id = str(raw_id)
    else:
        return _reject(record, f"id is not a string: {_short_repr(raw_id)}")

    if "timestamp" not in record:
        return _reject(record, "missing timestamp", raw_id)
    try:
        ts_us = parse_timestamp(record["timestamp"])
    except TimestampError as exc:
        return _reject(record, exc.reason, raw_id)

    data, problem = (text, None) if text is not None else _content_problem(record)
    if data is None:
        return _reject(record, problem or "record cannot be stored", raw_id)

    raw_type = record.get("type")
    plain = raw_type is None or type(raw_type) is str
    event_type = raw_type if plain else dumps_exact(raw_type)
    return Event(event_id, event_type, ts_us, data)  # positional: a third cheaper


def transform_page(
    records: Iterable[Any], *, finite: bool = False
) -> tuple[list[Event], list[Rejected]]:
    """Split a page's records into storable events and rejected records, keeping page order.

    Records kept as text (RecordTexts) are stored as that text. Otherwise a page's JSON texts
    are written in one go where the page allows (see recordtexts); `finite` is the caller's
    word that no float in it is NaN or infinite, true of everything `decode_body` returns,
    which spares pages holding a null the record-by-record checks."""
    if isinstance(records, RecordTexts):
        return _from_texts(records)
    records = records if isinstance(records, list) else list(records)
    texts = record_texts(records, finite=finite)
    pairs = zip(records, texts, strict=True) if texts is not None else ((r, None) for r in records)
    return _split(_transform(record, text) for record, text in pairs)


def _from_texts(records: RecordTexts) -> tuple[list[Event], list[Rejected]]:
    """Each record judged by its id, type and timestamp and stored as the text it arrived in;
    one that fails is read in full, so its rejection reads as any other page's would."""
    events: list[Event] = []
    rejected: list[Rejected] = []
    add = events.append
    fields = zip(records.texts, records.ids, records.types, records.timestamps, strict=True)
    for text, raw_id, raw_type, stamp in fields:
        # The usual record, without building a dict: a short id that is not blank, a string
        # type or none, and the documented timestamp (epoch milliseconds) taken inline, as
        # _from_int would. Anything else takes parse_timestamp, or _transform's path.
        if (
            type(raw_id) is str
            and 0 < len(raw_id) <= _ID_MAX_CHARS // 4
            and not raw_id.isspace()
            and (raw_type is None or type(raw_type) is str)
        ):
            if type(stamp) is int and _SECONDS_BELOW <= stamp < _MILLIS_BELOW:
                add(Event(raw_id, raw_type, stamp * 1000, text))
                continue
            try:
                add(Event(raw_id, raw_type, parse_timestamp(stamp), text))
                continue
            except TimestampError:
                pass
        result = _transform({"id": raw_id, "type": raw_type, "timestamp": stamp}, text)
        if type(result) is not Event:
            result = transform_record(records.decode(text))
        if type(result) is Event:
            add(result)
        else:
            rejected.append(result)  # type: ignore[arg-type]
    return events, rejected


def _split(results: Iterable[Event | Rejected]) -> tuple[list[Event], list[Rejected]]:
    events: list[Event] = []
    rejected: list[Rejected] = []
    add_event = events.append
    add_rejected = rejected.append
    for result in results:
        if type(result) is Event:
            add_event(result)
        else:
            add_rejected(result)  # type: ignore[arg-type]
    return events, rejected


def event_position(event: Event) -> Position:
    """The stream position just after `event` (millisecond timestamp and id)."""
    return Position(ts_ms=event.ts_us // 1000, event_id=event.id)
