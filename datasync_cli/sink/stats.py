"""Read-only queries behind `status`, `verify` and `export-ids`."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg2

from ..errors import DatabaseError
from ..models import Checkpoint
from .checkpoints import (
    CHECKPOINT_COLUMNS,
    RUN_COLUMNS,
    RunRecord,
    checkpoint_from_row,
    run_from_row,
)
from .db import connect, describe, operation_error
from .lock import LeaseHolder, read_holder
from .migrations import available

ID_FETCH_SIZE = 50_000

# The reason's text before the first colon names its kind ("unparseable timestamp: '...'").
_REJECTED_BY_KIND_SQL = """
SELECT split_part(reason, ':', 1) AS kind, count(*) FROM rejected_events
GROUP BY kind ORDER BY count(*) DESC, kind
"""

_TS_MS = "floor(extract(epoch FROM {}) * 1000)::bigint"


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    """A reader's checkpoint as stored, with its bookkeeping times."""

    checkpoint: Checkpoint
    created_at: datetime
    updated_at: datetime
    age_s: float

    @property
    def range_id(self) -> str:
        return self.checkpoint.range_id

    @property
    def finished(self) -> bool:
        return self.checkpoint.finished

    def as_dict(self) -> dict[str, Any]:
        cp = self.checkpoint
        return {
            "reader_id": cp.range_id,
            "hi_ms": cp.hi_ms,
            "lo_ms": cp.lo_ms,
            "last_ts_ms": cp.position.ts_ms if cp.position else None,
            "last_id": cp.position.event_id if cp.position else None,
            "endpoint": cp.endpoint,
            "cursor": cp.cursor,
            "events": cp.events,
            "rejected": cp.rejected,
            "finished": cp.finished,
            "head_ms": cp.head_ms,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "age_s": round(self.age_s, 3),
        }


@dataclass(frozen=True, slots=True)
class StoreStats:
    """What the database holds. `migrated` is False on a database datasync never touched."""

    migrated: bool
    schema_versions: list[str] = field(default_factory=list)
    ingested: int = 0
    rejected: int = 0
    conflicts: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    checkpoints: list[StoredCheckpoint] = field(default_factory=list)
    last_run: RunRecord | None = None
    min_ts_ms: int | None = None
    max_ts_ms: int | None = None
    lease: LeaseHolder | None = None  # who holds the ingest lease (None: nobody)

    @property
    def last_run_status(self) -> str | None:
        return self.last_run.status if self.last_run else None

    @property
    def run_completed(self) -> bool:
        return self.last_run is not None and self.last_run.status == "completed"

    def as_dict(self) -> dict[str, Any]:
        run = self.last_run
        return {
            "migrated": self.migrated,
            "schema_versions": self.schema_versions,
            "ingested": self.ingested,
            "rejected": self.rejected,
            "conflicts": self.conflicts,
            "rejected_by_reason": self.rejected_by_reason,
            "min_ts_ms": self.min_ts_ms,
            "max_ts_ms": self.max_ts_ms,
            "checkpoints": [c.as_dict() for c in self.checkpoints],
            "readers_unfinished": sum(1 for c in self.checkpoints if not c.finished),
            "last_run": None
            if run is None
            else {
                "run_id": run.run_id,
                "status": run.status,
                "started_at": run.started_at.isoformat(),
                "finished_at": run.finished_at.isoformat() if run.finished_at else None,
                "source_total": run.source_total,
                "inserted": run.inserted,
                "rejected": run.rejected,
                "message": run.message,
            },
            "run_completed": self.run_completed,
            "ingest_holder": self.lease.as_dict() if self.lease else None,
        }


def store_stats(dsn: str) -> StoreStats:
    """Counts, checkpoints and the last run, read in one snapshot."""
    conn = connect(dsn)
    try:
        conn.set_session(readonly=True, isolation_level="REPEATABLE READ")
        with conn.cursor() as cur:
            stats = _read_stats(cur, dsn)
        conn.rollback()
    except psycopg2.Error as exc:
        raise operation_error(exc, "reading the store's statistics", dsn) from None
    finally:
        conn.close()
    return stats


def _read_stats(cur: psycopg2.extensions.cursor, dsn: str) -> StoreStats:
    cur.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")
    row = cur.fetchone()
    if not row or not row[0]:
        return StoreStats(migrated=False)
    cur.execute("SELECT version FROM schema_migrations ORDER BY version")
    versions = [str(r[0]) for r in cur.fetchall()]
    pending = [m.version for m in available() if m.version not in versions]
    if pending:
        # An older schema lacks tables and columns read below: say so, not a SQL error.
        raise DatabaseError(
            f"the schema of {describe(dsn)} is older than this datasync "
            f"(migration {', '.join(pending)} to apply)",
            "run datasync migrate, or ingest, which migrates first",
        )
    cur.execute(
        f"SELECT count(*), {_TS_MS.format('min(timestamp)')}, "
        f"{_TS_MS.format('max(timestamp)')}, (SELECT count(*) FROM event_conflicts) "
        "FROM ingested_events"
    )
    ingested, min_ts, max_ts, conflicts = cur.fetchone() or (0, None, None, 0)
    cur.execute(_REJECTED_BY_KIND_SQL)
    by_reason = {str(kind): int(n) for kind, n in cur.fetchall()}
    cur.execute(
        f"SELECT {CHECKPOINT_COLUMNS}, created_at, updated_at, "
        "extract(epoch FROM now() - updated_at)::float8 "
        "FROM cursor_state ORDER BY reader_id"
    )
    checkpoints = [
        StoredCheckpoint(checkpoint_from_row(r), r[11], r[12], float(r[13]))
        for r in cur.fetchall()
    ]
    cur.execute(f"SELECT {RUN_COLUMNS} FROM ingest_runs ORDER BY run_id DESC LIMIT 1")
    run_row = cur.fetchone()
    return StoreStats(
        migrated=True,
        schema_versions=versions,
        ingested=int(ingested),
        rejected=sum(by_reason.values()),
        conflicts=int(conflicts),
        rejected_by_reason=by_reason,
        checkpoints=checkpoints,
        last_run=run_from_row(run_row) if run_row else None,
        min_ts_ms=None if min_ts is None else int(min_ts),
        max_ts_ms=None if max_ts is None else int(max_ts),
        lease=read_holder(cur),
    )


def iter_ids(dsn: str) -> Generator[str, None, None]:
    """Every stored event id in code point order (the order of Python's sorted()), streamed
    through a server-side cursor so memory stays flat for millions of ids."""
    conn = connect(dsn)
    try:
        conn.set_session(readonly=True)
        with conn.cursor(name="datasync_ids") as cur:
            cur.itersize = ID_FETCH_SIZE
            cur.execute('SELECT id FROM ingested_events ORDER BY id COLLATE "C"')
            for (event_id,) in cur:
                yield event_id
        conn.rollback()
    except psycopg2.Error as exc:
        raise operation_error(exc, "reading event ids", dsn) from None
    finally:
        conn.close()


# Order-independent: the exact sum of each id's md5 read as a signed 64-bit integer (first 16
# hex digits). datasync_cli.mockapi.truth.id_hash computes the same value in Python.
_ID_CHECKSUM_SQL = (
    "SELECT count(*), coalesce(sum(('x' || substr(md5(id), 1, 16))::bit(64)::bigint), 0) "
    "FROM ingested_events"
)


@dataclass(frozen=True, slots=True)
class IdChecksum:
    count: int
    checksum: int


def _one_row(dsn: str, statement: str, doing: str) -> tuple[Any, ...]:
    """The one row a read-only statement returns, on a connection of its own."""
    conn = connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
            row = cur.fetchone()
        conn.rollback()
    except psycopg2.Error as exc:
        raise operation_error(exc, doing, dsn) from None
    finally:
        conn.close()
    assert row is not None
    return tuple(row)


def id_checksum(dsn: str) -> IdChecksum:
    """Count and order-independent checksum of the stored ids, computed by the server."""
    count, checksum = _one_row(dsn, _ID_CHECKSUM_SQL, "computing the id checksum")
    return IdChecksum(count=int(count), checksum=int(checksum))


def newest_plausible_ts_ms(dsn: str) -> int | None:
    """The newest stored instant that is not more than a day in the future (a record dated
    9999 says nothing about where the stream is)."""
    (newest,) = _one_row(
        dsn,
        f"SELECT {_TS_MS.format('max(timestamp)')} FROM ingested_events "
        "WHERE timestamp <= now() + interval '1 day'",
        "reading the newest stored instant",
    )
    return None if newest is None else int(newest)
