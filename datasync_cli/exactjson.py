"""Compact JSON text for records read with exact decimals: every digit kept, no recursion.

orjson writes ordinary records far faster; this serves the rare ones it cannot write (numbers
beyond a double, integers beyond 64 bits) and the text of rejected records of any depth.
"""

from __future__ import annotations

import json.encoder
import math
from decimal import Decimal
from typing import Any

MAX_DEPTH = 254  # what orjson writes; deeper records are refused with that reason


class TooDeepError(ValueError):
    """A value nested deeper than the limit."""


class NonFiniteError(ValueError):
    """NaN or Infinity, which JSON (and JSONB) cannot hold."""


class _Literal(str):
    """Text already in JSON form, waiting on the stack."""


def dumps_exact(
    value: Any, *, ascii_only: bool = False, max_depth: int = MAX_DEPTH, allow_nan: bool = False
) -> str:
    """`value` as compact JSON. Raises TooDeepError, NonFiniteError (unless `allow_nan`, which
    writes NaN and Infinity as Python's json does), or TypeError for a type JSON has no form
    for."""
    quote = json.encoder.encode_basestring_ascii if ascii_only else json.encoder.encode_basestring
    out: list[str] = []
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if type(item) is _Literal:
            out.append(item)
        elif isinstance(item, (dict, list, tuple)):
            if depth >= max_depth:
                raise TooDeepError(f"nested deeper than {max_depth} levels")
            _push_container(item, depth, stack, quote)
        else:
            out.append(_scalar(item, quote, allow_nan))
    return "".join(out)


def _push_container(
    item: dict[Any, Any] | list[Any] | tuple[Any, ...],
    depth: int,
    stack: list[tuple[Any, int]],
    quote: Any,
) -> None:
    """Push a container's closing bracket, members and opening bracket (reversed)."""
    if isinstance(item, dict):
        stack.append((_Literal("}"), 0))
        entries = list(item.items())
        for i in range(len(entries) - 1, -1, -1):
            key, member = entries[i]
            stack.append((member, depth + 1))
            stack.append((_Literal(quote(str(key)) + ":"), 0))
            if i:
                stack.append((_Literal(","), 0))
        stack.append((_Literal("{"), 0))
        return
    stack.append((_Literal("]"), 0))
    for i in range(len(item) - 1, -1, -1):
        stack.append((item[i], depth + 1))
        if i:
            stack.append((_Literal(","), 0))
    stack.append((_Literal("["), 0))


def _scalar(item: Any, quote: Any, allow_nan: bool) -> str:
    if isinstance(item, str):
        return str(quote(item))
    if item is None:
        return "null"
    if item is True:
        return "true"
    if item is False:
        return "false"
    if isinstance(item, int):
        return str(item)
    if isinstance(item, float):
        if not math.isfinite(item):
            if allow_nan:
                return "NaN" if item != item else ("Infinity" if item > 0 else "-Infinity")
            raise NonFiniteError("non-finite number")
        return repr(item)
    if isinstance(item, Decimal):
        if not item.is_finite():
            if allow_nan:
                return "NaN" if item.is_nan() else ("Infinity" if item > 0 else "-Infinity")
            raise NonFiniteError("non-finite number")
        return str(item)
    raise TypeError(f"{type(item).__name__} has no JSON form")


def walk(value: Any) -> list[Any]:
    """Every key and scalar inside `value`, without recursion."""
    found: list[Any] = []
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            found.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        else:
            found.append(item)
    return found
