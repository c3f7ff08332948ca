"""Record faults seen in the field: invalid records, valid but awkward content, stripped fields."""

from __future__ import annotations

import random
from typing import Any

# Records no database row can hold as a valid event: they must end up rejected.
BAD_KINDS = ("missing_id", "empty_id", "bad_timestamp", "null_timestamp", "nul_char")
# Valid events whose content trips naive escaping or size limits: they must be stored.
AWKWARD_KINDS = ("escapes", "non_bmp", "huge_properties")
# Fields a consumer must not require; id, type and timestamp are always kept.
OPTIONAL_FIELDS = ("sessionId", "userId", "name", "properties", "session")

HUGE_PROPERTY_CHARS = 256 * 1024
_HUGE_TEXT = ("lorem ipsum dolor sit amet, consectetur adipiscing " * 6000)[:HUGE_PROPERTY_CHARS]


def apply_kind(record: dict[str, Any], kind: str) -> dict[str, Any]:
    """A copy of `record` altered into the named bad or awkward form."""
    out = dict(record)
    if kind == "missing_id":
        del out["id"]
    elif kind == "empty_id":
        out["id"] = ""
    elif kind == "bad_timestamp":
        out["timestamp"] = "2026-13-45T99:99:99Z"
    elif kind == "null_timestamp":
        out["timestamp"] = None
    elif kind == "nul_char":
        out["properties"] = {**out["properties"], "note": "before\u0000after"}
    elif kind == "escapes":
        out["properties"] = {
            **out["properties"],
            "path": "C:\\Users\\demo\\file.txt",
            "text": 'line one\nline two\ttabbed "quoted" \\n literal\r\n',
        }
    elif kind == "non_bmp":
        out["properties"] = {**out["properties"], "emoji": "🎉🚀 \U0001f600", "music": "𝄞 clef"}
    elif kind == "huge_properties":
        out["properties"] = {**out["properties"], "blob": _HUGE_TEXT}
    else:
        raise ValueError(f"unknown record kind {kind!r}")
    return out


def strip_optional(record: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """A copy of `record` without one to three of its optional fields."""
    present = [name for name in OPTIONAL_FIELDS if name in record]
    if not present:
        return record
    dropped = set(rng.sample(present, rng.randint(1, min(3, len(present)))))
    return {key: value for key, value in record.items() if key not in dropped}
