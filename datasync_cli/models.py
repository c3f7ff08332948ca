"""Small immutable values shared by the source, transform, sink and pipeline."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, overload

Endpoint = Literal["feed", "standard"]


@dataclass(frozen=True, slots=True)
class Position:
    """A place in the stream: just after the event with this timestamp and id (newest first)."""

    ts_ms: int
    event_id: str


@dataclass(frozen=True, slots=True)
class Page:
    """One response of the events endpoints, decoded but not yet validated record by record.

    `records` is, for an ordinary page, RecordTexts; otherwise a list of what JSON decodes to
    (numbers beyond a double as Decimal, NaN and Infinity too, so no float is ever non-finite)
    or an UnreadableRecord."""

    records: Sequence[Any]
    next_cursor: str | None
    has_more: bool
    total: int | None
    endpoint: Endpoint
    request_id: str | None = None


class RecordTexts(Sequence[Any]):
    """A page's records as the JSON text each arrived in, with the three fields the transform
    reads first; the rest of a record is never built as Python objects.

    `decode` gives a record in full, as any other page's records are read, for the few that
    need a closer look (and for whoever indexes or iterates the page)."""

    __slots__ = ("decode", "ids", "texts", "timestamps", "types")

    def __init__(
        self,
        texts: list[str],
        ids: list[Any],
        types: list[Any],
        timestamps: list[Any],
        decode: Callable[[str], Any],
    ) -> None:
        self.texts = texts
        self.ids = ids
        self.types = types
        self.timestamps = timestamps
        self.decode = decode

    def __len__(self) -> int:
        return len(self.texts)

    @overload
    def __getitem__(self, index: int) -> Any: ...

    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [self.decode(text) for text in self.texts[index]]
        return self.decode(self.texts[index])


@dataclass(frozen=True, slots=True)
class UnreadableRecord:
    """A record of a page that could not be parsed on its own (its raw text and why); the
    transform rejects it, the rest of its page is stored."""

    raw: str
    reason: str


class Event(NamedTuple):
    """A record that can be stored: normalized instant in epoch microseconds, JSON text as received.

    `data` is compact JSON (as orjson writes it), so it holds no raw control character: no tab,
    newline, carriage return or NUL. A named tuple rather than a dataclass: one is built per
    event, and this is the cheapest.
    """

    id: str
    event_type: str | None
    ts_us: int
    data: str


@dataclass(frozen=True, slots=True)
class Rejected:
    """A record that cannot be stored, kept with its raw text and the reason."""

    raw: str
    reason: str
    event_id: str | None = None
    # Two sightings of the same bad record share this (see transform); stored once.
    identity: str | None = None


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Where one range stands; saved with the batch it describes.

    A range covers events whose timestamps lie in [lo_ms, hi_ms] (inclusive, None = open).
    `position` is the last event stored; `cursor` the service's cursor after it, if any.
    """

    range_id: str
    hi_ms: int | None = None
    lo_ms: int | None = None
    cursor: str | None = None
    position: Position | None = None
    events: int = 0
    rejected: int = 0
    finished: bool = False
    endpoint: Endpoint | None = None
    # The top range only: the median instant of its first page, where the stream's head was
    # when the plan began; the next incremental run reads down to it.
    head_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Batch:
    """What the writer commits in one transaction: rows, rejects and the range's new checkpoint.

    `copy_rows` are the events already encoded for COPY, built by the reader thread so the
    writer spends its time in the database, not in Python."""

    events: list[Event]
    rejected: list[Rejected]
    checkpoint: Checkpoint
    copy_rows: bytes
    fetched: int = 0
