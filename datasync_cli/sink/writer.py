"""CopyWriter: one batch = one transaction (COPY to staging, upsert, rejects, checkpoint).

Because data and checkpoint commit together, a crash anywhere leaves either both or neither;
a rolled-back batch is simply fetched and written again, and ON CONFLICT makes that idempotent.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType

import psycopg2
import psycopg2.errors
import psycopg2.extras

from ..clock import Clock, SystemClock
from ..errors import DatabaseError
from ..models import Batch, Event, Rejected
from .checkpoints import UPSERT_CHECKPOINT_SQL, checkpoint_params
from .copy_format import STAGING_COLUMNS
from .db import Connection, connect, connection_lost, describe, first_line, operation_error
from .lock import IngestLock

log = logging.getLogger(__name__)

COPY_SQL = f"COPY staging_events ({', '.join(STAGING_COLUMNS)}) FROM STDIN"

# Seconds and microseconds apart: interval * float stays exact over the whole year 1..9999 range.
# (%% is a literal percent sign: these statements take parameters.)
_TIMESTAMP_EXPR = (
    "timestamptz 'epoch' + (ts_us / 1000000) * interval '1 second'"
    " + (ts_us %% 1000000) * interval '1 microsecond'"
)

# One writer per database (the ingest lease fences every batch), so the staging table is ours
# alone: it is truncated after each page, which is far cheaper than deleting rows.
# (No parameters here, so the percent sign is written once.)
UPSERT_FROM_STAGING_SQL = f"""
INSERT INTO ingested_events (id, event_type, timestamp, data)
SELECT id, event_type, {_TIMESTAMP_EXPR.replace("%%", "%")}, data::jsonb
FROM staging_events
ON CONFLICT (id) DO NOTHING
"""

CLEAR_STAGING_SQL = "TRUNCATE staging_events"

INSERT_ONE_SQL = f"""
INSERT INTO ingested_events (id, event_type, timestamp, data)
SELECT id, event_type, {_TIMESTAMP_EXPR}, data::jsonb
FROM (VALUES (%s, %s, %s::bigint, %s)) AS v (id, event_type, ts_us, data)
ON CONFLICT (id) DO NOTHING
"""

INSERT_REJECTED_SQL = """
INSERT INTO rejected_events (raw_sha256, event_id, reason, raw) VALUES %s
ON CONFLICT (raw_sha256) DO NOTHING
RETURNING 1
"""

_COPY_CHUNK = 1 << 20
_FIRST_DELAY_S = 0.5
_MAX_DELAY_S = 8.0


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What one batch changed: new rows, ids already stored, newly recorded rejects."""

    inserted: int
    duplicates: int
    rejected_new: int


def raw_sha256(raw: str) -> str:
    """The dedupe key of a rejected record."""
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


class _Refused(Exception):
    """Connecting again failed; carries the mapped error for the final message."""

    def __init__(self, error: DatabaseError) -> None:
        super().__init__(error.message)
        self.error = error


class CopyWriter:
    """Writes batches into one database; the ingest lease makes it the only writer there.

    With `lease`, each batch commits only while the lease is still this run's (it is renewed
    in the batch's transaction); without, the caller vouches for being the only writer.
    A lost connection (server restart, pg_terminate_backend, network) is re-established with
    exponential backoff for up to `reconnect_budget_s`, then the whole batch is redone.
    """

    def __init__(
        self,
        dsn: str,
        clock: Clock | None = None,
        stop: threading.Event | None = None,
        reconnect_budget_s: float = 60.0,
        lease: IngestLock | None = None,
    ) -> None:
        self._dsn = dsn
        self._lease = lease
        self._clock: Clock = clock or SystemClock()
        self._stop = stop
        self._budget = reconnect_budget_s
        self.reconnects = 0
        self._conn: Connection | None = connect(dsn)

    def __enter__(self) -> CopyWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            conn.close()

    def write(self, batch: Batch) -> WriteResult:
        """Commit the batch's rows, rejects and checkpoint in one transaction."""
        isolate = False
        failing_since: float | None = None
        delay = _FIRST_DELAY_S
        while True:
            try:
                return self._write_once(self._connection(), batch, isolate)
            except _Refused as refused:
                failure: str = refused.error.message
            except psycopg2.Error as exc:
                lost = connection_lost(exc, self._conn)
                self._recover(lost)
                if not lost:
                    if isinstance(exc, psycopg2.DataError) and not isolate:
                        # One record PostgreSQL refuses: redo row by row to reject just it.
                        isolate = True
                        continue
                    raise operation_error(exc, "saving a batch", self._dsn) from None
                failure = f"{describe(self._dsn)}: {first_line(exc, self._dsn)}"
            except BaseException:
                self._recover(lost=False)
                raise
            now = self._clock.monotonic()
            if failing_since is None:
                failing_since = now
            waited = now - failing_since
            if waited >= self._budget:
                raise DatabaseError(
                    "lost the connection to PostgreSQL and could not reconnect within "
                    f"{self._budget:.0f} s ({failure})",
                    "check that the server is running, then rerun; the last checkpoint is intact",
                )
            log.warning("database connection lost (%s); reconnecting in %.1f s", failure, delay)
            if self._clock.sleep(min(delay, self._budget - waited), self._stop):
                raise DatabaseError(
                    "stopped while reconnecting to PostgreSQL; the batch in flight was not saved",
                    "rerun to continue from the last checkpoint",
                )
            delay = min(delay * 2, _MAX_DELAY_S)

    def _connection(self) -> Connection:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        try:
            self._conn = connect(self._dsn)
        except DatabaseError as exc:
            raise _Refused(exc) from None
        self.reconnects += 1
        return self._conn

    def _recover(self, lost: bool) -> None:
        """Roll back a failed transaction, or drop a connection that is gone."""
        conn = self._conn
        if conn is None:
            return
        if not lost and not conn.closed:
            try:
                conn.rollback()
                return
            except psycopg2.Error:
                pass
        self._conn = None
        if not conn.closed:
            with contextlib.suppress(psycopg2.Error):
                conn.close()

    def _write_once(self, conn: Connection, batch: Batch, isolate: bool) -> WriteResult:
        rejected = list(batch.rejected)
        inserted = 0
        with conn.cursor() as cur:
            if batch.events:
                if isolate:
                    inserted = self._insert_each(cur, batch.events, rejected)
                else:
                    payload = io.BytesIO(batch.copy_rows)
                    cur.copy_expert(COPY_SQL, payload, size=_COPY_CHUNK)
                    cur.execute(UPSERT_FROM_STAGING_SQL)
                    inserted = cur.rowcount
                    cur.execute(CLEAR_STAGING_SQL)
            rejected_new = self._insert_rejected(cur, rejected)
            cur.execute(UPSERT_CHECKPOINT_SQL, checkpoint_params(batch.checkpoint))
            if self._lease is not None:
                self._lease.fence(cur)
        conn.commit()
        duplicates = len(batch.events) - inserted - (len(rejected) - len(batch.rejected))
        return WriteResult(inserted=inserted, duplicates=duplicates, rejected_new=rejected_new)

    @staticmethod
    def _insert_each(
        cur: psycopg2.extensions.cursor, events: Sequence[Event], rejected: list[Rejected]
    ) -> int:
        """Slow path: one savepoint per row; rows PostgreSQL refuses join `rejected`."""
        inserted = 0
        for event in events:
            cur.execute("SAVEPOINT datasync_row")
            try:
                cur.execute(INSERT_ONE_SQL, (event.id, event.event_type, event.ts_us, event.data))
            except psycopg2.DataError as exc:
                cur.execute("ROLLBACK TO SAVEPOINT datasync_row")
                rejected.append(
                    Rejected(
                        raw=event.data,
                        reason=f"PostgreSQL refused the record: {first_line(exc)}",
                        event_id=event.id,
                    )
                )
                continue
            inserted += cur.rowcount
            cur.execute("RELEASE SAVEPOINT datasync_row")
        return inserted

    @staticmethod
    def _insert_rejected(cur: psycopg2.extensions.cursor, rejected: Sequence[Rejected]) -> int:
        if not rejected:
            return 0
        unique = {raw_sha256(r.identity or r.raw): (r.event_id, r.reason, r.raw) for r in rejected}
        rows = sorted(unique.items())
        values = [(digest, event_id, reason, raw) for digest, (event_id, reason, raw) in rows]
        returned = psycopg2.extras.execute_values(
            cur, INSERT_REJECTED_SQL, values, page_size=len(values), fetch=True
        )
        return len(returned)
