"""The statements that store one page inside its transaction, in three ways.

* Direct: a page is COPYed straight into ingested_events (the normal case: its ids are new).
  No staging, no probe; a page that meets a stored id fails at that row with a unique
  violation, and is done again the staged way.
* Staged: a page that overlaps what is stored is COPYed into the UNLOGGED staging table, then
  `INSERT ... ON CONFLICT DO NOTHING`; the ids that were already there are compared with the
  stored versions, and each version with different content is kept in event_conflicts.
* Row by row: when PostgreSQL refuses something in a page, each row goes in under a savepoint,
  so only the rows it refuses are rejected.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg2
import psycopg2.extras

from ..models import Event, Rejected
from .copy_format import copy_sql, timestamp_text
from .db import first_line

Cursor = psycopg2.extensions.cursor

COPY_DIRECT_SQL = copy_sql("ingested_events")
COPY_STAGING_SQL = copy_sql("staging_events")

UPSERT_FROM_STAGING_SQL = """
INSERT INTO ingested_events (id, event_type, timestamp, data)
SELECT id, event_type, timestamp, data FROM staging_events
ON CONFLICT (id) DO NOTHING
"""

# The same event reads `timestamp` as epoch ms on the feed and as ISO text on the standard
# endpoint: content is compared without it, and the normalized instant stands in for it.
_DIFFERS = (
    "(e.data - 'timestamp') IS DISTINCT FROM (v.data - 'timestamp') "
    "OR e.timestamp IS DISTINCT FROM v.timestamp"
)
KEEP_CONFLICTS_SQL = f"""
WITH v AS (SELECT id, timestamp, data FROM staging_events),
differing AS (SELECT v.* FROM v JOIN ingested_events e ON e.id = v.id WHERE {_DIFFERS}),
kept AS (
    INSERT INTO event_conflicts (id, timestamp, data) SELECT id, timestamp, data FROM differing
    ON CONFLICT DO NOTHING RETURNING 1
)
SELECT (SELECT count(*) FROM differing)
"""
CLEAR_STAGING_SQL = "TRUNCATE staging_events"

INSERT_ONE_SQL = """
INSERT INTO ingested_events (id, event_type, timestamp, data)
VALUES (%s, %s, %s::timestamptz, %s::jsonb)
ON CONFLICT (id) DO NOTHING
"""
KEEP_ONE_CONFLICT_SQL = f"""
WITH v AS (SELECT %s::text AS id, %s::timestamptz AS timestamp, %s::jsonb AS data),
differing AS (SELECT v.* FROM v JOIN ingested_events e ON e.id = v.id WHERE {_DIFFERS}),
kept AS (
    INSERT INTO event_conflicts (id, timestamp, data) SELECT id, timestamp, data FROM differing
    ON CONFLICT DO NOTHING RETURNING 1
)
SELECT (SELECT count(*) FROM differing)
"""

INSERT_REJECTED_SQL = """
INSERT INTO rejected_events (raw_sha256, event_id, reason, raw) VALUES %s
ON CONFLICT (raw_sha256) DO NOTHING
RETURNING 1
"""

_COPY_CHUNK = 1 << 20
# SQLSTATE classes a single row's content can cause: data exceptions (22: bad JSON for jsonb,
# out-of-range values) and program limits (54: an index row too large, a JSON too deep).
ROW_CAUSED_CLASSES = ("22", "54")


@dataclass(frozen=True, slots=True)
class RowsWritten:
    """How a page's events fared: new rows, copies of stored content, differing versions."""

    inserted: int
    duplicates: int
    conflicts: int


def raw_sha256(raw: str) -> str:
    """The dedupe key of a rejected record."""
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def row_caused(exc: psycopg2.Error) -> bool:
    """Whether PostgreSQL refused something in a row's content (not the statement as such)."""
    return (getattr(exc, "pgcode", None) or "")[:2] in ROW_CAUSED_CLASSES


def write_direct(cur: Cursor, copy_rows: bytes, count: int) -> RowsWritten:
    """COPY a page straight into ingested_events; a stored id raises UniqueViolation."""
    cur.copy_expert(COPY_DIRECT_SQL, io.BytesIO(copy_rows), size=_COPY_CHUNK)
    return RowsWritten(inserted=count, duplicates=0, conflicts=0)


def write_staged(cur: Cursor, copy_rows: bytes, count: int) -> RowsWritten:
    """COPY to staging, insert what is new, keep the versions that differ from stored ones."""
    cur.copy_expert(COPY_STAGING_SQL, io.BytesIO(copy_rows), size=_COPY_CHUNK)
    cur.execute(UPSERT_FROM_STAGING_SQL)
    inserted = cur.rowcount
    conflicts = 0
    if inserted < count:  # only pages that met stored ids pay for the comparison
        cur.execute(KEEP_CONFLICTS_SQL)
        row = cur.fetchone()
        conflicts = int(row[0]) if row else 0
    cur.execute(CLEAR_STAGING_SQL)
    return RowsWritten(inserted, count - inserted - conflicts, conflicts)


def write_each(cur: Cursor, events: Sequence[Event], rejected: list[Rejected]) -> RowsWritten:
    """One savepoint per row; rows PostgreSQL refuses join `rejected` with its reason."""
    inserted = conflicts = refused = 0
    for event in events:
        stamp = timestamp_text(event.ts_us)
        cur.execute("SAVEPOINT datasync_row")
        try:
            cur.execute(INSERT_ONE_SQL, (event.id, event.event_type, stamp, event.data))
            if cur.rowcount:
                inserted += 1
            else:
                cur.execute(KEEP_ONE_CONFLICT_SQL, (event.id, stamp, event.data))
                row = cur.fetchone()
                conflicts += int(row[0]) if row else 0
        except psycopg2.Error as exc:
            cur.execute("ROLLBACK TO SAVEPOINT datasync_row")
            if not row_caused(exc):
                raise
            refused += 1
            rejected.append(
                Rejected(
                    raw=event.data,
                    reason=f"PostgreSQL refused the record: {first_line(exc)}",
                    event_id=event.id[:200],
                )
            )
            continue
        cur.execute("RELEASE SAVEPOINT datasync_row")
    duplicates = len(events) - inserted - conflicts - refused
    return RowsWritten(inserted, duplicates, conflicts)


def insert_rejected(cur: Cursor, rejected: Sequence[Rejected]) -> int:
    """Record rejected records once each (by identity); returns how many are new."""
    if not rejected:
        return 0
    unique = {raw_sha256(r.identity or r.raw): (r.event_id, r.reason, r.raw) for r in rejected}
    values = [(digest, eid, reason, raw) for digest, (eid, reason, raw) in sorted(unique.items())]
    returned = psycopg2.extras.execute_values(
        cur, INSERT_REJECTED_SQL, values, page_size=len(values), fetch=True
    )
    return len(returned)
