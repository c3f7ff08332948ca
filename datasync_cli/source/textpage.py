"""The fast reading of an ordinary page: each record kept as its text, three fields read.

Building every record as Python objects, only to write it back as JSON for PostgreSQL, was most
of a page's cost. msgspec reads the body twice without building the rest of a record: once for
the span of each record, once for its id, type and timestamp. A page with anything unusual
(an escape PostgreSQL's JSONB refuses or that hides a NUL or a surrogate, a field of an odd
type, text that is not UTF-8, great depth, no data list) is read the general way instead
(`decode_body`), so every rule about odd records lives in one place.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..models import RecordTexts, UnreadableRecord
from .envelope import BOM, decode_body

__all__ = ["decode_page_body"]

_UNSET = msgspec.UNSET
# Valid JSON holds raw tabs, newlines and carriage returns only between tokens, where a space
# means the same; in a COPY row they would end the field or the row.
_LAYOUT = b"\t\n\r"
_TO_SPACES = bytes.maketrans(_LAYOUT, b"   ")
_ENVELOPE_KEYS = ("pagination", "meta", "nextCursor", "hasMore", "total")


class _Fields(msgspec.Struct, gc=False):
    id: Any = _UNSET
    type: Any = None  # a missing type and a null one read alike
    timestamp: Any = _UNSET


class _FieldsPage(msgspec.Struct):
    data: list[_Fields]


class _TextPage(msgspec.Struct):
    data: list[msgspec.Raw]
    pagination: Any = _UNSET
    meta: Any = _UNSET
    nextCursor: Any = _UNSET  # the service's own spelling
    hasMore: Any = _UNSET
    total: Any = _UNSET


_read_fields = msgspec.json.Decoder(_FieldsPage).decode
_read_texts = msgspec.json.Decoder(_TextPage).decode


def decode_page_body(content: bytes) -> Any:
    """A data page's envelope with its records as RecordTexts, or, for anything but an
    ordinary page, whatever `decode_body` makes of it."""
    if content.startswith(BOM):
        content = content[len(BOM) :]
    envelope = _text_page(content)
    return envelope if envelope is not None else decode_body(content)


def _text_page(content: bytes) -> dict[str, Any] | None:
    if b"\\" in content and _risky_escape(content):  # one byte: found at memchr's speed
        return None
    try:
        fields = _read_fields(content).data  # validates the whole body, strictly
        if any(ch in content for ch in (b"\t", b"\n", b"\r")):
            content = content.translate(_TO_SPACES)
        page = _read_texts(content)
        texts = [str(raw, "utf-8") for raw in page.data]
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        return None
    ids = [f.id for f in fields]
    types = [f.type for f in fields]
    stamps = [f.timestamp for f in fields]
    if len(texts) != len(fields) or not _plain(ids, types, stamps):
        return None
    envelope: dict[str, Any] = {
        key: value
        for key in _ENVELOPE_KEYS
        if (value := getattr(page, key)) is not _UNSET
    }
    envelope["data"] = RecordTexts(texts, ids, types, stamps, _record)
    return envelope


def _risky_escape(content: bytes) -> bool:
    """An escape JSONB refuses (NUL) or that may stand alone (a surrogate half): such pages
    take the general path, which rejects just the record with a reason."""
    return b"\\u0000" in content or b"\\ud" in content or b"\\uD" in content


def _plain(ids: list[Any], types: list[Any], stamps: list[Any]) -> bool:
    """Every id a string or an integer, every timestamp a string or an integer, every type a
    string or absent: the fields the transform reads straight from here."""
    return (
        set(map(type, ids)) <= {str, int}
        and set(map(type, stamps)) <= {str, int}
        and set(map(type, types)) <= {str, type(None)}
    )


def _record(text: str) -> Any:
    """One record in full, read as `decode_body` reads a page."""
    value = decode_body(text.encode("utf-8"))
    return value if value is not None else UnreadableRecord(text, "record could not be read")
