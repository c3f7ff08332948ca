"""The service's cursor: both base64 alphabets, with or without padding, and forging."""

from __future__ import annotations

import base64
import json

from hypothesis import given
from hypothesis import strategies as st

from datasync_cli.models import Position
from datasync_cli.source.cursor import (
    cursor_position,
    decode_cursor,
    encode_cursor,
    forge_cursor,
)


def _service_cursor(fields: dict[str, object], alphabet: str, padded: bool) -> str:
    raw = json.dumps(fields, separators=(",", ":")).encode()
    text = (base64.urlsafe_b64encode if alphabet == "urlsafe" else base64.b64encode)(raw).decode()
    return text if padded else text.rstrip("=")


# Chosen so the encoding holds '+', '/' or '=' in the standard alphabet.
TRICKY = {"id": "ab>>?~~~é", "ts": 1769541612369, "v": 2, "exp": 1769541729369}


def test_encode_is_compact_json_in_the_service_layout() -> None:
    cursor = encode_cursor("e-1", 1_769_541_612_369, 1_769_541_729_369)
    raw = base64.b64decode(cursor)
    assert raw == b'{"id":"e-1","ts":1769541612369,"v":2,"exp":1769541729369}'


def test_decode_accepts_every_alphabet_and_padding() -> None:
    variants = {
        _service_cursor(TRICKY, alphabet, padded)
        for alphabet in ("standard", "urlsafe")
        for padded in (True, False)
    }
    assert len(variants) >= 3  # the variants really differ
    for variant in variants:
        assert decode_cursor(variant) == TRICKY
        assert cursor_position(variant) == Position(TRICKY["ts"], TRICKY["id"])  # type: ignore[arg-type]


def test_undecodable_cursors_give_none() -> None:
    for bad in ["", "!!!", "bm90IGpzb24", base64.b64encode(b"[1,2]").decode(), None]:
        assert decode_cursor(bad) is None
        assert cursor_position(bad) is None


def test_a_cursor_without_position_fields_has_no_position() -> None:
    cursor = base64.b64encode(b'{"id":"x","ts":"soon"}').decode()
    assert decode_cursor(cursor) == {"id": "x", "ts": "soon"}
    assert cursor_position(cursor) is None


def test_forge_carries_the_position_and_a_fresh_expiry() -> None:
    cursor = forge_cursor(Position(1_769_000_000_123, "evt-9"), now_ms=5_000, ttl_ms=117_000)
    assert decode_cursor(cursor) == {"id": "evt-9", "ts": 1_769_000_000_123, "v": 2, "exp": 122_000}


@given(
    event_id=st.text(max_size=40),
    ts=st.integers(min_value=0, max_value=2**53),
    exp=st.integers(min_value=0, max_value=2**53),
)
def test_round_trip(event_id: str, ts: int, exp: int) -> None:
    cursor = encode_cursor(event_id, ts, exp)
    assert decode_cursor(cursor) == {"id": event_id, "ts": ts, "v": 2, "exp": exp}
    assert decode_cursor(cursor.rstrip("=").replace("+", "-").replace("/", "_")) == {
        "id": event_id,
        "ts": ts,
        "v": 2,
        "exp": exp,
    }
