"""Every record's compact JSON text from one orjson call per page.

Writing a page's records one call at a time, and then looking in each text for what PostgreSQL
cannot hold, costs more than reading the page did. Written as one list, with a separator between
records that no record can be mistaken for, the page needs one call and one search; a page that
holds anything unusual is left to the per-record checks, which name the reason.
"""

from __future__ import annotations

import secrets
from typing import Any

import orjson

# A string value no service sends: random digits drawn per process, plain ASCII so that the text
# holds no escape of its own (the search for an escaped NUL below then rarely has to look closely).
# Should a record hold it all the same, the page splits into too many pieces and is refused here.
_SEPARATOR_VALUE = "~" + secrets.token_hex(12) + "~"
_SEPARATOR = "," + orjson.dumps(_SEPARATOR_VALUE).decode() + ","


def record_texts(records: list[Any], *, finite: bool) -> list[str] | None:
    """Each record's compact JSON, as `orjson.dumps(record)` writes it, when the page needs no
    closer look; None when it does: something orjson cannot write (exact decimals, a lone
    surrogate, great depth), a NUL, or, unless `finite` says no float is NaN or infinite, a
    null (orjson writes those numbers as null)."""
    if not records:
        return []
    items: list[Any] = [_SEPARATOR_VALUE] * (2 * len(records) - 1)
    items[::2] = records
    try:
        whole = orjson.dumps(items).decode()
    except orjson.JSONEncodeError:
        return None
    if "\\u0000" in whole or (not finite and "null" in whole):
        return None
    texts = whole[1:-1].split(_SEPARATOR)
    return texts if len(texts) == len(records) else None
