"""transform: timestamp normalization, validation reasons, exactness of the stored JSON."""

from __future__ import annotations

import calendar
import json
import math
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from datasync_cli.models import Event, Position, Rejected
from datasync_cli.transform import (
    MAX_TS_US,
    MIN_TS_US,
    TimestampError,
    event_position,
    parse_timestamp,
    transform_page,
    transform_record,
)


def utc_us(dt: datetime) -> int:
    """Independent oracle: calendar arithmetic on the UTC time tuple."""
    return calendar.timegm(dt.utctimetuple()) * 1_000_000 + dt.microsecond


# 2026-01-27T19:19:13.629Z, the instant used in the service's documentation samples.
SAMPLE = datetime(2026, 1, 27, 19, 19, 13, 629000, tzinfo=timezone.utc)
SAMPLE_US = utc_us(SAMPLE)
SAMPLE_MS = SAMPLE_US // 1000


def event_record(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": "56a349b5-7243-4e0c-9fd8-f2c1eb2a5d35",
        "sessionId": "0ae5e27f-6b0e-4bd2-9c35-0f7a1c5e2d11",
        "userId": "1f2a12b4-3c4d-4e5f-8a9b-0c1d2e3f4a5b",
        "type": "click",
        "name": "event_e8o287",
        "properties": {"page": "/home"},
        "timestamp": SAMPLE_MS,
        "session": {"id": "0ae5e27f-6b0e", "deviceType": "tablet", "browser": "Edge"},
    }
    record.update(changes)
    return {k: v for k, v in record.items() if v is not _DROP}


_DROP = object()


class TestParseTimestamp:
    def test_oracle_agrees_with_the_documented_sample(self) -> None:
        assert SAMPLE_MS == 1769541553629

    @pytest.mark.parametrize(
        "value",
        [
            SAMPLE_MS,  # epoch ms, the documented numeric form
            SAMPLE_MS / 1000,  # epoch seconds with a fraction
            SAMPLE_US,  # microseconds
            SAMPLE_US * 1000,  # nanoseconds
            float(SAMPLE_MS),
            str(SAMPLE_MS),
            f"{SAMPLE_MS / 1000:.3f}",
            f" {SAMPLE_MS} ",
            str(SAMPLE_US * 1000),
            "2026-01-27T19:19:13.629Z",
            "2026-01-27T19:19:13.629z",
            "2026-01-27T19:19:13.629+00:00",
            "2026-01-27 19:19:13.629Z",
            "2026-01-27T19:19:13.629",  # naive means UTC
            "2026-01-28T00:49:13.629+05:30",
            "2026-01-28T00:49:13.629+0530",
            "2026-01-27T11:19:13.629-08",
            "2026-01-27T11:19:13.629-08:00",
            "2026-01-27T19:19:13.629000Z",
            "2026-01-27T19:19:13.629000000Z",
            "2026-01-27T19:19:13,629Z",
            "20260127T191913.629Z",
            "Tue, 27 Jan 2026 19:19:13.629 +0000",
            Decimal(SAMPLE_MS),
        ],
    )
    def test_every_form_denotes_the_same_instant(self, value: Any) -> None:
        assert parse_timestamp(value) == SAMPLE_US

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("2026-01-27T19:19:13.6Z", SAMPLE_US - 29000),
            ("2026-01-27T19:19:13.62Z", SAMPLE_US - 9000),
            ("2026-01-27T19:19:13.629123Z", SAMPLE_US + 123),
            ("2026-01-27T19:19:13Z", SAMPLE_US - 629000),
            ("2026-01-27", SAMPLE_US - (19 * 3600 + 19 * 60 + 13) * 1_000_000 - 629000),
            (0, 0),
            (-1, -1_000_000),  # small magnitudes are seconds
            ("-1500", -1_500_000_000),
            (99_999_999_999, 99_999_999_999_000_000),  # the largest value read as seconds
            (100_000_000_000, 100_000_000_000_000),  # the smallest read as milliseconds
            (1769541612.5, 1769541612_500_000),
        ],
    )
    def test_precision_and_units(self, value: Any, expected: int) -> None:
        assert parse_timestamp(value) == expected

    def test_range_edges(self) -> None:
        assert parse_timestamp("0001-01-01T00:00:00Z") == MIN_TS_US
        assert parse_timestamp("9999-12-31T23:59:59.999999Z") == MAX_TS_US
        assert utc_us(datetime(1, 1, 1, tzinfo=timezone.utc)) == MIN_TS_US

    def test_an_integer_too_long_to_print_is_out_of_range(self) -> None:
        with pytest.raises(TimestampError) as caught:
            parse_timestamp(10**5000)
        assert caught.value.reason.startswith("timestamp out of range")

    @pytest.mark.parametrize(
        ("value", "reason"),
        [
            (None, "missing timestamp"),
            (True, "unparseable timestamp"),
            (False, "unparseable timestamp"),
            ("", "empty timestamp"),
            ("   ", "empty timestamp"),
            ("yesterday", "unparseable timestamp"),
            ("not a date 12", "unparseable timestamp"),
            ("10:30", "unparseable timestamp"),  # no date at all
            ("March 5", "unparseable timestamp"),  # no year
            ("NaN", "unparseable timestamp"),
            ("Infinity", "unparseable timestamp"),
            (math.nan, "unparseable timestamp"),
            (math.inf, "unparseable timestamp"),
            (-math.inf, "unparseable timestamp"),
            ("2026-13-01T00:00:00Z", "unparseable timestamp"),
            ("2026-01-27T19:19:13+05:00Z", "unparseable timestamp"),
            ("0001-01-01T00:00:00+01:00", "timestamp out of range"),
            (10**21, "timestamp out of range"),
            (-(10**21), "timestamp out of range"),
            (10**400, "timestamp out of range"),
            ("9" * 5000, "unparseable timestamp"),
            ("1e400", "timestamp out of range"),
            ([SAMPLE_MS], "unparseable timestamp"),
            ({"ms": SAMPLE_MS}, "unparseable timestamp"),
        ],
    )
    def test_rejections_carry_a_reason(self, value: Any, reason: str) -> None:
        with pytest.raises(TimestampError) as caught:
            parse_timestamp(value)
        assert caught.value.reason.startswith(reason)
        assert isinstance(caught.value, ValueError)

    def test_reason_quotes_the_value_briefly(self) -> None:
        with pytest.raises(TimestampError) as caught:
            parse_timestamp("x" * 20 + "garbage")
        assert "xxxx" in caught.value.reason
        with pytest.raises(TimestampError) as long_value:
            parse_timestamp("nonsense " * 50)
        assert len(long_value.value.reason) < 100

    @given(
        st.datetimes(
            min_value=datetime(1, 1, 2),
            max_value=datetime(9999, 12, 30),
            timezones=st.sampled_from(
                [
                    timezone.utc,
                    timezone(timedelta(hours=5, minutes=30)),
                    timezone(-timedelta(hours=8)),
                ]
            ),
        )
    )
    def test_any_isoformat_round_trips(self, moment: datetime) -> None:
        assert parse_timestamp(moment.isoformat()) == utc_us(moment)
        assert parse_timestamp(moment.isoformat(sep=" ")) == utc_us(moment)

    @given(st.integers(min_value=10**11, max_value=10**14 - 1))
    def test_any_epoch_ms_is_exact_as_number_and_text(self, ms: int) -> None:
        assert parse_timestamp(ms) == ms * 1000
        assert parse_timestamp(str(ms)) == ms * 1000
        iso = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=ms)
        assert parse_timestamp(iso.isoformat(timespec="milliseconds").replace("+00:00", "Z")) == (
            ms * 1000
        )


class TestTransformRecord:
    def test_valid_record_keeps_data_exactly(self) -> None:
        record = event_record(timestamp="2026-01-27T19:19:13.629Z")
        event = transform_record(record)
        assert isinstance(event, Event)
        assert event.id == record["id"]
        assert event.event_type == "click"
        assert event.ts_us == SAMPLE_US
        assert json.loads(event.data) == record
        assert list(json.loads(event.data)) == list(record)  # key order as received

    def test_epoch_and_iso_records_get_the_same_instant(self) -> None:
        numeric = transform_record(event_record())
        iso = transform_record(event_record(timestamp="2026-01-27T19:19:13.629Z"))
        assert isinstance(numeric, Event) and isinstance(iso, Event)
        assert numeric.ts_us == iso.ts_us

    def test_numeric_id_is_stored_as_decimal_text(self) -> None:
        event = transform_record(event_record(id=12345678901234567890))
        assert isinstance(event, Event)
        assert event.id == "12345678901234567890"
        assert json.loads(event.data)["id"] == 12345678901234567890

    def test_missing_type_is_none_and_odd_type_is_json_text(self) -> None:
        missing = transform_record(event_record(type=_DROP))
        odd = transform_record(event_record(type={"kind": "click"}))
        number = transform_record(event_record(type=7))
        assert isinstance(missing, Event) and missing.event_type is None
        assert isinstance(odd, Event) and odd.event_type == '{"kind":"click"}'
        assert isinstance(number, Event) and number.event_type == "7"

    def test_missing_optional_fields_are_fine(self) -> None:
        event = transform_record({"id": "a", "timestamp": SAMPLE_MS})
        assert isinstance(event, Event)
        assert json.loads(event.data) == {"id": "a", "timestamp": SAMPLE_MS}

    def test_hard_text_is_kept(self) -> None:
        text = 'tab\there "quote" back\\slash\nnew\rline \U0001f600 \u2028 \x01'
        record = event_record(name=text, properties={text: [text, None, 1.5, -0.0, 10**30]})
        event = transform_record(record)
        assert isinstance(event, Event)
        assert json.loads(event.data) == record

    def test_literal_backslash_u0000_text_is_not_a_nul(self) -> None:
        record = event_record(name="\\u0000 is how JSON spells NUL")
        event = transform_record(record)
        assert isinstance(event, Event)
        assert json.loads(event.data)["name"] == "\\u0000 is how JSON spells NUL"

    def test_a_null_value_is_not_mistaken_for_nan(self) -> None:
        event = transform_record(event_record(name=None, properties={"null": "null"}))
        assert isinstance(event, Event)

    @pytest.mark.parametrize(
        ("record", "reason"),
        [
            ([1, 2], "record is not a JSON object"),
            ("text", "record is not a JSON object"),
            (None, "record is not a JSON object"),
            (42, "record is not a JSON object"),
            (event_record(id=_DROP), "missing id"),
            (event_record(id=None), "id is null"),
            (event_record(id=""), "empty id"),
            (event_record(id="   "), "empty id"),
            (event_record(id=True), "id is not a string"),
            (event_record(id=["a"]), "id is not a string"),
            (event_record(id={"a": 1}), "id is not a string"),
            (event_record(id=math.nan), "id is not a string"),
            (event_record(timestamp=_DROP), "missing timestamp"),
            (event_record(timestamp=None), "missing timestamp"),
            (event_record(timestamp="soon"), "unparseable timestamp: 'soon'"),
            (event_record(timestamp="99999-01-01"), "unparseable timestamp"),
            (event_record(name="a\x00b"), "string holds a NUL character"),
            (event_record(properties={"k\x00": 1}), "string holds a NUL character"),
            (event_record(id="abc\x00"), "string holds a NUL character"),
            (event_record(name="\ud800"), "string holds a lone surrogate"),
            (event_record(properties={"\udfff": 1}), "string holds a lone surrogate"),
            (event_record(properties={"x": math.nan}), "record holds a non-finite number"),
            (event_record(properties=[math.inf]), "record holds a non-finite number"),
            (event_record(properties={"x": 10**30, "y": math.nan}), "record holds a non-finite"),
        ],
    )
    def test_rejections(self, record: Any, reason: str) -> None:
        result = transform_record(record)
        assert isinstance(result, Rejected)
        assert result.reason.startswith(reason)

    def test_rejected_raw_is_ascii_json_that_gives_the_record_back(self) -> None:
        record = event_record(name="nul \x00 and \ud800 and \U0001f600")
        result = transform_record(record)
        assert isinstance(result, Rejected)
        assert result.raw.isascii()
        assert json.loads(result.raw) == record
        assert result.event_id == record["id"]

    def test_rejected_event_id_is_storable(self) -> None:
        result = transform_record(event_record(id="a\x00b"))
        assert isinstance(result, Rejected)
        assert result.event_id is not None
        assert "\x00" not in result.event_id
        assert result.event_id.encode("utf-8")
        huge = transform_record(event_record(id="x" * 5000, timestamp="never"))
        assert isinstance(huge, Rejected)
        assert huge.event_id is not None and len(huge.event_id) <= 200

    def test_rejected_without_usable_id(self) -> None:
        result = transform_record(event_record(id=_DROP))
        assert isinstance(result, Rejected)
        assert result.event_id is None


class TestTransformPage:
    def test_splits_and_keeps_order(self) -> None:
        records = [
            event_record(id="a"),
            event_record(id=""),
            event_record(id="b", timestamp="2026-01-27T19:19:13.629Z"),
            "garbage",
            event_record(id="c", timestamp="nope"),
            event_record(id="d"),
        ]
        events, rejected = transform_page(records)
        assert [e.id for e in events] == ["a", "b", "d"]
        assert [r.reason.split(":")[0] for r in rejected] == [
            "empty id",
            "record is not a JSON object",
            "unparseable timestamp",
        ]
        assert len(events) + len(rejected) == len(records)

    def test_empty_page(self) -> None:
        assert transform_page([]) == ([], [])

    def test_event_position(self) -> None:
        events, _ = transform_page([event_record(timestamp="2026-01-27T19:19:13.629999Z")])
        assert event_position(events[0]) == Position(ts_ms=SAMPLE_MS, event_id=events[0].id)


json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.text(),
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in (*_texts(k), *_texts(v))]
    if isinstance(value, list):
        return [t for v in value for t in _texts(v)]
    return []


def _floats(value: Any) -> list[float]:
    if isinstance(value, float):
        return [value]
    if isinstance(value, dict):
        return [f for v in value.values() for f in _floats(v)]
    if isinstance(value, list):
        return [f for v in value for f in _floats(v)]
    return []


def _storable_text(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


@given(extra=st.dictionaries(st.text(), json_value, max_size=6), event_id=st.text(min_size=1))
def test_any_record_is_stored_exactly_or_rejected_for_a_named_reason(
    extra: dict[str, Any], event_id: str
) -> None:
    record = {**extra, "id": event_id, "timestamp": SAMPLE_MS}
    result = transform_record(record)
    storable = all(_storable_text(t) for t in _texts(record)) and all(
        math.isfinite(f) for f in _floats(record)
    )
    if not event_id.strip():
        assert isinstance(result, Rejected) and result.reason == "empty id"
    elif storable:
        assert isinstance(result, Event)
        assert result.id == event_id
        assert json.loads(result.data) == record
        assert orjson.loads(result.data) == record or any(abs(i) >= 2**63 for i in _ints(record))
    else:
        assert isinstance(result, Rejected)
        assert result.reason.startswith(("string holds", "record holds"))
        assert result.raw.isascii()


def _ints(value: Any) -> list[int]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [value]
    if isinstance(value, dict):
        return [i for v in value.values() for i in _ints(v)]
    if isinstance(value, list):
        return [i for v in value for i in _ints(v)]
    return []


# --- what a hostile or broken source can send -----------------------------------------------


def test_exact_decimals_are_kept_digit_for_digit() -> None:
    from decimal import Decimal

    long = Decimal("0.1000000000000000055511151231257827")
    record = {"id": "x", "timestamp": 1769541612369,
              "p": {"tiny": Decimal("1E-400"), "long": long, "huge": Decimal("1E+400"),
                    "int": 10**40}}
    event = transform_record(record)
    assert isinstance(event, Event)
    assert "1E-400" in event.data and "0.1000000000000000055511151231257827" in event.data
    assert "1E+400" in event.data and str(10**40) in event.data


def test_a_number_beyond_postgresql_numeric_is_rejected_with_a_reason() -> None:
    from decimal import Decimal

    result = transform_record({"id": "x", "timestamp": 1, "n": Decimal("1E+200000")})
    assert isinstance(result, Rejected) and "numeric" in result.reason


@pytest.mark.parametrize("depth", [300, 450, 900])
def test_a_deeply_nested_record_is_rejected_not_a_crash(depth: int) -> None:
    nested: list[object] = []
    inner = nested
    for _ in range(depth):
        inner.append([])
        inner = inner[0]  # type: ignore[assignment]
    result = transform_record({"id": "deep", "timestamp": 1769541612369, "n": nested})
    assert isinstance(result, Rejected)
    assert "nested deeper than" in result.reason
    assert result.raw.startswith('{"id": "deep"') or result.raw.startswith('{"id":"deep"')


def test_an_id_too_long_for_the_primary_key_is_rejected() -> None:
    result = transform_record({"id": "i" * 3000, "timestamp": 1769541612369})
    assert isinstance(result, Rejected) and "id longer than" in result.reason
    assert result.event_id is not None and len(result.event_id) <= 200


def test_two_different_bad_records_sharing_an_id_are_two_rejections() -> None:
    a = transform_record({"id": "same", "timestamp": "not a time", "v": 1})
    b = transform_record({"id": "same", "timestamp": "not a time", "v": 2})
    assert isinstance(a, Rejected) and isinstance(b, Rejected)
    assert a.identity != b.identity


def test_one_bad_record_seen_on_both_endpoints_is_one_rejection() -> None:
    feed = transform_record({"id": "x", "timestamp": 1769541612369, "s": "nul\x00"})
    iso = "2026-01-27T19:20:12.369Z"
    standard = transform_record({"id": "x", "timestamp": iso, "s": "nul\x00"})
    assert isinstance(feed, Rejected) and isinstance(standard, Rejected)
    assert feed.identity == standard.identity


def test_an_unreadable_record_is_rejected_with_its_text() -> None:
    from datasync_cli.models import UnreadableRecord

    result = transform_record(UnreadableRecord('{"id":"x","n":[[[', "record nested too deeply"))
    assert isinstance(result, Rejected)
    assert result.raw == '{"id":"x","n":[[[' and result.reason == "record nested too deeply"
