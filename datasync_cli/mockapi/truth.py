"""What the full stream of a MockConfig holds, for tests that check an ingest end to end.

The checksum is order independent and computed identically in Python and PostgreSQL: the sum,
as an exact integer, of each id's md5 read as a signed big-endian 64-bit number (first 16 hex
digits). In SQL: see CHECKSUM_SQL (sum over bigint yields numeric, so nothing overflows).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from .config import MockConfig
from .faults import BAD_KINDS
from .stream import EventStream

CHECKSUM_SQL = (
    "SELECT count(*), coalesce(sum(('x' || substr(md5(id), 1, 16))::bit(64)::bigint), 0) "
    "FROM ingested_events"
)
_CHUNK = 10_000


def id_hash(event_id: str) -> int:
    """What PostgreSQL computes as ('x' || substr(md5(id), 1, 16))::bit(64)::bigint."""
    return int.from_bytes(hashlib.md5(event_id.encode("utf-8")).digest()[:8], "big", signed=True)


def id_checksum(ids: Iterable[str]) -> int:
    """Order-independent checksum of a set of ids (pass each id once)."""
    return sum(id_hash(i) for i in ids)


@dataclass(frozen=True)
class BadRecord:
    """An invalid record: its index, what is wrong, its original id and the id it is served with."""

    index: int
    kind: str
    event_id: str
    served_id: str | None


@dataclass(frozen=True)
class TruthSummary:
    """Counts and checksums of the full stream (and of the part served before an early end)."""

    valid_count: int
    valid_checksum: int
    bad_count: int
    reported_total: int
    served_valid_count: int
    served_valid_checksum: int


class StreamTruth:
    """Ground truth for one MockConfig, computed by iterating the stream in chunks."""

    def __init__(self, config: MockConfig) -> None:
        self.config = config
        self.stream = EventStream(config)

    def iter_valid_ids(self, served_only: bool = False) -> Iterator[str]:
        """Every id a correct ingest must store, in stream order, each once."""
        stream = self.stream
        end = stream.served_end if served_only else stream.size
        for start in range(0, end, _CHUNK):
            stop = min(end, start + _CHUNK)
            _, ids = stream.timeline.span(start, stop)
            for offset, event_id in enumerate(ids):
                if not stream.is_bad(start + offset):
                    yield event_id

    def bad_records(self) -> list[BadRecord]:
        out: list[BadRecord] = []
        for index, kind in sorted(self.stream.kinds.items()):
            if kind not in BAD_KINDS:
                continue
            event_id = self.stream.timeline.event_id(index)
            served = None if kind == "missing_id" else "" if kind == "empty_id" else event_id
            out.append(BadRecord(index, kind, event_id, served))
        return out

    def awkward_ids(self) -> list[str]:
        """Valid events with escapes, non-BMP characters or huge properties."""
        tl = self.stream.timeline
        return [
            tl.event_id(i) for i, kind in sorted(self.stream.kinds.items()) if kind not in BAD_KINDS
        ]

    def duplicate_ids(self) -> list[str]:
        """Events served twice (the second time about a page later)."""
        return [self.stream.timeline.event_id(i) for i in sorted(self.stream.copied)]

    def summary(self) -> TruthSummary:
        served_end = self.stream.served_end
        count = checksum = served_count = served_checksum = 0
        position = 0
        for start in range(0, self.stream.size, _CHUNK):
            stop = min(self.stream.size, start + _CHUNK)
            _, ids = self.stream.timeline.span(start, stop)
            for offset, event_id in enumerate(ids):
                position = start + offset
                if self.stream.is_bad(position):
                    continue
                h = id_hash(event_id)
                count += 1
                checksum += h
                if position < served_end:
                    served_count += 1
                    served_checksum += h
        return TruthSummary(
            valid_count=count,
            valid_checksum=checksum,
            bad_count=len(self.bad_records()),
            reported_total=self.stream.reported_total,
            served_valid_count=served_count,
            served_valid_checksum=served_checksum,
        )
