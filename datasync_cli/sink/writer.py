"""CopyWriter: one batch = one transaction (rows, rejects, checkpoint).

Because data and checkpoint commit together, a crash anywhere leaves either both or neither;
a rolled-back batch is simply fetched and written again, and the primary key makes that
idempotent. How a page's rows go in is page_sql's business; this module owns the connection,
reconnects, and which way to write a page.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass
from enum import Enum
from types import TracebackType

import psycopg2
import psycopg2.errors

from ..clock import Clock, SystemClock
from ..errors import DatabaseError
from ..models import Batch
from .checkpoints import UPSERT_CHECKPOINT_SQL, checkpoint_params
from .db import Connection, connect, connection_lost, describe, first_line, operation_error
from .lock import IngestLock
from .page_sql import (
    RowsWritten,
    insert_rejected,
    row_caused,
    write_direct,
    write_each,
    write_staged,
)

log = logging.getLogger(__name__)

_FIRST_DELAY_S = 0.5
_MAX_DELAY_S = 8.0
# A page's rows and its checkpoint commit together, so a server crash can only lose both (the
# next run fetches them again): the page commit need not wait for its WAL flush. The run's last
# bookkeeping commit is synchronous, which makes every earlier commit durable before the run
# reports itself complete.
PAGE_COMMIT_SQL = "SET LOCAL synchronous_commit = off"


class Mode(Enum):
    """How a page goes in: see page_sql."""

    DIRECT = "direct"
    STAGED = "staged"
    ROW_BY_ROW = "row by row"


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What one batch did. Every fetched record is one of: inserted, a duplicate of stored
    content (or of a rejected record already recorded), a conflicting version, rejected."""

    inserted: int
    duplicates: int
    conflicts: int
    rejected: int


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
        self._overlapping = False  # the last page met stored ids: try the next one staged
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
        mode = self._first_mode(batch)
        failing_since: float | None = None
        delay = _FIRST_DELAY_S
        while True:
            try:
                return self._write_once(self._connection(), batch, mode)
            except _Refused as refused:
                failure: str = refused.error.message
            except psycopg2.Error as exc:
                lost = connection_lost(exc, self._conn)
                self._recover(lost)
                if not lost:
                    mode = self._fallback(exc, mode)
                    continue
                failure = f"{describe(self._dsn)}: {first_line(exc, self._dsn)}"
            except BaseException:
                self._recover(lost=False)
                raise
            failing_since = failing_since or self._clock.monotonic()
            delay = self._wait_to_reconnect(failing_since, failure, delay)

    def _first_mode(self, batch: Batch) -> Mode:
        """Straight in, unless the page repeats an id or the last page met stored ids (a rerun
        over stored events, where a direct COPY would only fail)."""
        ids = {e.id for e in batch.events}
        return Mode.STAGED if self._overlapping or len(ids) != len(batch.events) else Mode.DIRECT

    def _fallback(self, exc: psycopg2.Error, mode: Mode) -> Mode:
        """The next way to try a page PostgreSQL refused, or the error when there is none."""
        if isinstance(exc, psycopg2.errors.UniqueViolation) and mode is Mode.DIRECT:
            # The page meets stored ids (a range boundary, a rerun): redo it through staging.
            self._overlapping = True
            return Mode.STAGED
        if row_caused(exc) and mode is not Mode.ROW_BY_ROW:
            return Mode.ROW_BY_ROW  # one record PostgreSQL refuses: reject just that one
        raise operation_error(exc, "saving a batch", self._dsn) from None

    def _wait_to_reconnect(self, failing_since: float, failure: str, delay: float) -> float:
        waited = self._clock.monotonic() - failing_since
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
        return min(delay * 2, _MAX_DELAY_S)

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

    def _write_once(self, conn: Connection, batch: Batch, mode: Mode) -> WriteResult:
        rejected = list(batch.rejected)
        events = batch.events
        with conn.cursor() as cur:
            cur.execute(PAGE_COMMIT_SQL)
            if not events:
                rows = RowsWritten(0, 0, 0)
            elif mode is Mode.ROW_BY_ROW:
                rows = write_each(cur, events, rejected)
            elif mode is Mode.STAGED:
                rows = write_staged(cur, batch.copy_rows, len(events))
                self._overlapping = rows.inserted < len(events)
            else:
                rows = write_direct(cur, batch.copy_rows, len(events))
            rejected_new = insert_rejected(cur, rejected)
            cur.execute(UPSERT_CHECKPOINT_SQL, checkpoint_params(batch.checkpoint))
            if self._lease is not None:
                self._lease.fence(cur)
        conn.commit()
        return WriteResult(
            inserted=rows.inserted,
            duplicates=rows.duplicates + len(rejected) - rejected_new,
            conflicts=rows.conflicts,
            rejected=rejected_new,
        )
