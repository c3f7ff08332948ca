"""Reader checkpoints (cursor_state) and run bookkeeping (ingest_runs).

The writer saves a reader's checkpoint in the transaction of the batch it describes; this
module covers what happens outside batches: planning ranges, resetting, run records.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Literal, TypeVar

import psycopg2

from ..models import Checkpoint, Position
from .db import Connection
from .lock import IngestLock
from .session import Session

T = TypeVar("T")
Cursor = psycopg2.extensions.cursor
RunStatus = Literal["running", "completed", "interrupted", "failed"]
RUN_STATUSES: tuple[RunStatus, ...] = ("running", "completed", "interrupted", "failed")

CHECKPOINT_COLUMNS = (
    "reader_id, hi_ms, lo_ms, cursor, endpoint, last_ts_ms, last_id, events, rejected, finished, "
    "head_ms"
)

UPSERT_CHECKPOINT_SQL = f"""
INSERT INTO cursor_state ({CHECKPOINT_COLUMNS}, updated_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now())
ON CONFLICT (reader_id) DO UPDATE SET
    hi_ms = EXCLUDED.hi_ms, lo_ms = EXCLUDED.lo_ms, cursor = EXCLUDED.cursor,
    endpoint = EXCLUDED.endpoint, last_ts_ms = EXCLUDED.last_ts_ms, last_id = EXCLUDED.last_id,
    events = EXCLUDED.events, rejected = EXCLUDED.rejected, finished = EXCLUDED.finished,
    head_ms = EXCLUDED.head_ms, updated_at = now()
"""

SELECT_CHECKPOINTS_SQL = (
    f"SELECT {CHECKPOINT_COLUMNS}, created_at, updated_at FROM cursor_state ORDER BY reader_id"
)


def checkpoint_params(cp: Checkpoint) -> tuple[Any, ...]:
    """The UPSERT_CHECKPOINT_SQL parameters of a checkpoint."""
    position = cp.position
    return (
        cp.range_id,
        cp.hi_ms,
        cp.lo_ms,
        cp.cursor,
        cp.endpoint,
        position.ts_ms if position else None,
        position.event_id if position else None,
        cp.events,
        cp.rejected,
        cp.finished,
        cp.head_ms,
    )


def checkpoint_from_row(row: Sequence[Any]) -> Checkpoint:
    """A Checkpoint from the first eleven columns of SELECT_CHECKPOINTS_SQL."""
    range_id, hi_ms, lo_ms, cursor, endpoint, last_ts_ms, last_id, events, rejected = row[:9]
    done, head_ms = row[9], row[10]
    position = Position(int(last_ts_ms), str(last_id)) if last_ts_ms is not None else None
    return Checkpoint(
        range_id=range_id,
        hi_ms=hi_ms,
        lo_ms=lo_ms,
        cursor=cursor,
        position=position,
        events=int(events),
        rejected=int(rejected),
        finished=bool(done),
        endpoint=endpoint if endpoint in ("feed", "standard") else None,
        head_ms=head_ms,
    )


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One row of ingest_runs."""

    run_id: int
    started_at: datetime
    finished_at: datetime | None
    status: str
    source_total: int | None
    inserted: int
    rejected: int
    message: str | None


RUN_COLUMNS = (
    "run_id, started_at, finished_at, status, source_total, inserted, rejected, message"
)


def run_from_row(row: Sequence[Any]) -> RunRecord:
    return RunRecord(
        run_id=int(row[0]),
        started_at=row[1],
        finished_at=row[2],
        status=str(row[3]),
        source_total=None if row[4] is None else int(row[4]),
        inserted=int(row[5]),
        rejected=int(row[6]),
        message=row[7],
    )


class CheckpointStore:
    """Checkpoints and run records of one database; opens its own connection from a DSN.

    Safe to share between threads: each call is one transaction, taken in turn. With a DSN, a
    connection lost between calls (server restart) is replaced once before giving up. With
    `lease`, every write commits only while the lease is still this run's.
    """

    def __init__(self, target: str | Connection, lease: IngestLock | None = None) -> None:
        self._lease = lease
        self._session = Session(target)

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> CheckpointStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _run(self, doing: str, body: Callable[[Cursor], T], *, writes: bool = True) -> T:
        """`body` in one transaction; with a lease, a write commits only while it holds."""
        lease = self._lease if writes else None
        if lease is None:
            return self._session.run(doing, body)

        def fenced(cur: Cursor) -> T:
            result = body(cur)
            lease.fence(cur)
            return result

        return self._session.run(doing, fenced)

    def load_all(self) -> list[Checkpoint]:
        """Every reader's checkpoint, ordered by reader id."""

        def body(cur: Cursor) -> list[Checkpoint]:
            cur.execute(SELECT_CHECKPOINTS_SQL)
            return [checkpoint_from_row(row) for row in cur.fetchall()]

        return self._run("reading checkpoints", body, writes=False)

    def save(self, checkpoint: Checkpoint) -> None:
        """Insert or replace one reader's checkpoint."""
        self._run(
            "saving a checkpoint",
            lambda cur: cur.execute(UPSERT_CHECKPOINT_SQL, checkpoint_params(checkpoint)),
        )

    def save_plan(self, checkpoints: Sequence[Checkpoint], *, replace_all: bool = False) -> None:
        """Make `checkpoints` the plan, atomically: each is inserted or replaced, and every
        unfinished reader not among them is deleted (its range now belongs to the new ones).
        Finished readers not named stay, as the record of ranges already covered, unless
        `replace_all`."""
        ids = [cp.range_id for cp in checkpoints]
        unless = "" if replace_all else "NOT finished AND "

        def body(cur: Cursor) -> None:
            cur.execute(f"DELETE FROM cursor_state WHERE {unless}NOT (reader_id = ANY(%s))", (ids,))
            for cp in checkpoints:
                cur.execute(UPSERT_CHECKPOINT_SQL, checkpoint_params(cp))

        self._run("saving the reader plan", body)

    def split_range(
        self, parent_id: str, parent_lo_ms: int | None, new_ranges: Sequence[Checkpoint]
    ) -> None:
        """Hand the older part of a reader's range to new readers, atomically: the split range's
        lower bound moves up to `parent_lo_ms` and the new readers' checkpoints appear."""

        def body(cur: Cursor) -> None:
            cur.execute(
                "UPDATE cursor_state SET lo_ms = %s, updated_at = now() WHERE reader_id = %s",
                (parent_lo_ms, parent_id),
            )
            for cp in new_ranges:
                cur.execute(UPSERT_CHECKPOINT_SQL, checkpoint_params(cp))

        self._run("splitting a reader range", body)

    def reset(self) -> int:
        """Delete every checkpoint so the next ingest starts over; stored events stay."""

        def body(cur: Cursor) -> int:
            cur.execute("DELETE FROM cursor_state")
            return int(cur.rowcount)

        return self._run("deleting checkpoints", body)

    def start_run(self, total: int | None) -> int:
        """Record a run as started; older runs still marked running (their process died
        without recording an outcome) become interrupted. Call while holding the ingest lease."""

        def body(cur: Cursor) -> int:
            cur.execute(
                "UPDATE ingest_runs SET status = 'interrupted', finished_at = now(), "
                "message = coalesce(message, 'process ended without recording an outcome') "
                "WHERE status = 'running'"
            )
            cur.execute(
                "INSERT INTO ingest_runs (status, source_total) VALUES ('running', %s) "
                "RETURNING run_id",
                (total,),
            )
            row = cur.fetchone()
            assert row is not None
            return int(row[0])

        return self._run("recording the run start", body)

    def update_run_total(self, run_id: int, total: int | None) -> None:
        """Record the source total once the first page told it."""
        self._run(
            "recording the source total",
            lambda cur: cur.execute(
                "UPDATE ingest_runs SET source_total = %s WHERE run_id = %s", (total, run_id)
            ),
        )

    def update_run_progress(
        self, run_id: int, inserted: int, rejected: int, total: int | None
    ) -> None:
        """A running run's counters so far, so `status` can show them live."""
        self._run(
            "recording the run's progress",
            lambda cur: cur.execute(
                "UPDATE ingest_runs SET inserted = %s, rejected = %s, "
                "source_total = coalesce(%s, source_total) WHERE run_id = %s",
                (inserted, rejected, total, run_id),
            ),
        )

    def finish_run(
        self,
        run_id: int,
        status: RunStatus,
        inserted: int,
        rejected: int,
        message: str | None = None,
    ) -> None:
        """Record how a run ended."""
        if status not in RUN_STATUSES:
            raise ValueError(f"unknown run status {status!r}")
        self._run(
            "recording the run outcome",
            lambda cur: cur.execute(
                "UPDATE ingest_runs SET status = %s, inserted = %s, rejected = %s, "
                "message = %s, finished_at = now() WHERE run_id = %s",
                (status, inserted, rejected, message, run_id),
            ),
        )

    def last_run(self) -> RunRecord | None:
        """The most recent run, or None."""

        def body(cur: Cursor) -> RunRecord | None:
            cur.execute(f"SELECT {RUN_COLUMNS} FROM ingest_runs ORDER BY run_id DESC LIMIT 1")
            row = cur.fetchone()
            return run_from_row(row) if row else None

        return self._run("reading the last run", body, writes=False)
