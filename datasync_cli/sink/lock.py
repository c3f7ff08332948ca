"""IngestLock: at most one ingest per database, held as a lease row in `ingest_lease`.

A session-level lock does not survive a transaction-pooling proxy (PgBouncer hands the session
to other clients between transactions), so the lease is a row that is taken, renewed and
released in short ordinary transactions, timed by the server's clock:

* it expires LEASE_TTL_S after its last renewal; the run renews it every LEASE_HEARTBEAT_S;
* it is taken over only once expired, or at once when its holder ran on this host and that
  process is certainly gone (a crash followed by a rerun), or, when its holder ran in another
  pid namespace of this host (a restarted container), once it missed two heartbeats;
* every write of the run renews it in the write's own transaction, as the last statement
  (`fence`): a write commits only while the lease is still this run's, and a takeover, which
  must lock the same row, waits for a write in flight to commit. Two ingests therefore never
  both write, whatever the clocks, pauses or network do.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from types import TracebackType
from typing import Any, TypeVar

import psycopg2
import psycopg2.errors

from .. import __version__
from ..errors import DatabaseError, LockHeldError
from .db import connect, operation_error
from .holder import ProcessIdentity, in_other_namespace_here, process_gone, this_process
from .session import Session

log = logging.getLogger(__name__)

T = TypeVar("T")
Cursor = psycopg2.extensions.cursor

LEASE_TTL_S = 30.0  # a holder that stops renewing is taken over this long after its last renewal
LEASE_HEARTBEAT_S = 5.0  # six renewals fit in one TTL: a few slow ones cost nothing
LOCK_WAIT_S = 5  # longest wait for the lease row while taking or renewing it
# A holder in another pid namespace of this host is watched this long: two missed heartbeats.
HEARTBEAT_WATCH_S = 2 * LEASE_HEARTBEAT_S + 1
WATCH_POLL_S = 0.5

LEASE_LAPSED = (
    "the ingest lease had expired while the database was out of reach; no other ingest took "
    "it, so this run renewed it and carries on"
)
_HELD_HINT = "wait for it to finish or stop it; two ingests at once are refused"

HOLDER_COLUMNS = (
    "holder_id, host, pid, process_start, version, taken_at, heartbeat_at, expires_at, "
    "extract(epoch FROM expires_at - now())::float8, "
    "extract(epoch FROM now() - heartbeat_at)::float8"
)
SELECT_HOLDER_SQL = f"SELECT {HOLDER_COLUMNS} FROM ingest_lease WHERE lease = 'ingest'"

_LEASE_VALUES = "%(holder_id)s, %(host)s, %(pid)s, %(start)s, %(version)s"
_INSERT_SQL = f"""
INSERT INTO ingest_lease (holder_id, host, pid, process_start, version, expires_at)
VALUES ({_LEASE_VALUES}, now() + %(ttl)s * interval '1 second')
ON CONFLICT (lease) DO NOTHING
RETURNING 1
"""
_TAKE_OVER_SQL = """
UPDATE ingest_lease SET holder_id = %(holder_id)s, host = %(host)s, pid = %(pid)s,
    process_start = %(start)s, version = %(version)s, taken_at = now(), heartbeat_at = now(),
    expires_at = now() + %(ttl)s * interval '1 second'
WHERE lease = 'ingest'
"""
# Renews the lease only while it is this holder's; returns whether it had expired meanwhile.
_RENEW_SQL = """
WITH before AS (
    SELECT expires_at <= now() AS lapsed FROM ingest_lease
    WHERE lease = 'ingest' AND holder_id = %(holder_id)s
)
UPDATE ingest_lease SET heartbeat_at = now(), expires_at = now() + %(ttl)s * interval '1 second'
WHERE lease = 'ingest' AND holder_id = %(holder_id)s
RETURNING (SELECT lapsed FROM before)
"""
_RELEASE_SQL = "DELETE FROM ingest_lease WHERE lease = 'ingest' AND holder_id = %(holder_id)s"


@dataclass(frozen=True, slots=True)
class LeaseHolder:
    """The lease row as read, with the server's view of its age and expiry."""

    holder_id: str
    process: ProcessIdentity
    version: str
    taken_at: datetime
    heartbeat_at: datetime
    expires_at: datetime
    expires_in_s: float  # negative once expired
    heartbeat_age_s: float

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> LeaseHolder:
        holder_id, host, pid, start, version, taken, beat, expires, left, age = row[:10]
        return cls(str(holder_id), ProcessIdentity(str(host), int(pid), str(start)),
                   str(version), taken, beat, expires, float(left), float(age))

    @property
    def expired(self) -> bool:
        return self.expires_in_s <= 0

    def gone(self) -> bool:
        """Its process is certainly gone (only knowable on the same host)."""
        return process_gone(self.process)

    def live(self) -> bool:
        """An ingest holds it now: not expired, and not a process known to be dead."""
        return not self.expired and not self.gone()

    def describe(self) -> str:
        since = self.taken_at.astimezone(timezone.utc)
        return (
            f"host {self.process.host}, pid {self.process.pid}, datasync {self.version}, "
            f"since {since:%Y-%m-%d %H:%M:%S} UTC"
        )

    def state(self) -> str:
        """One line for `status`: who holds it and what the next ingest would do."""
        if self.expired:
            return (f"{self.describe()}: expired {-self.expires_in_s:.0f} s ago, its process "
                    "stopped without releasing it; the next ingest takes over")
        if self.gone():
            return (f"{self.describe()}: its process on this host is gone; the next ingest "
                    "takes over at once")
        return (f"{self.describe()}: renewed {self.heartbeat_age_s:.0f} s ago, expires in "
                f"{self.expires_in_s:.0f} s unless renewed")

    def as_dict(self) -> dict[str, Any]:
        return {
            "host": self.process.host,
            "pid": self.process.pid,
            "version": self.version,
            "taken_at": self.taken_at.isoformat(),
            "heartbeat_at": self.heartbeat_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "expires_in_s": round(self.expires_in_s, 3),
            "live": self.live(),
            "state": self.state(),
        }


def read_holder(cur: Cursor) -> LeaseHolder | None:
    """The lease row, or None when no ingest holds the lease."""
    cur.execute(SELECT_HOLDER_SQL)
    row = cur.fetchone()
    return LeaseHolder.from_row(row) if row else None


class _Unproven(Exception):
    """The holder ran in another pid namespace of this host: only its heartbeat can tell."""

    def __init__(self, holder: LeaseHolder) -> None:
        super().__init__(holder.describe())
        self.holder = holder


def _running(holder: LeaseHolder) -> LockHeldError:
    return LockHeldError(
        f"another datasync ingest is already running against this database ({holder.describe()})",
        _HELD_HINT,
    )


def _lost(holder: LeaseHolder | None) -> LockHeldError:
    if holder is None:
        return LockHeldError("this ingest lost its lease: its row in ingest_lease was deleted; "
                             "stopping", "rerun to continue from the last checkpoint")
    return LockHeldError(
        f"this ingest lost its lease: another datasync ingest now holds it ({holder.describe()})"
        "; stopping",
        "what this run committed is kept; the other ingest carries on from there",
    )


class IngestLock:
    """Context manager: take the lease on enter (or raise LockHeldError), release it on exit.

    Thread-safe: a heartbeat may renew it while the run ends and releases it.
    """

    def __init__(self, dsn: str, ttl_s: float = LEASE_TTL_S) -> None:
        self._dsn = dsn
        self._ttl_s = ttl_s
        self._me = this_process()
        self._holder_id = uuid.uuid4().hex
        self._session = Session(
            dsn,
            passthrough=(psycopg2.errors.LockNotAvailable,),
            prepare=lambda cur: cur.execute(f"SET LOCAL lock_timeout = '{LOCK_WAIT_S}s'"),
        )
        self._mutex = threading.Lock()
        self._holding = False

    def __enter__(self) -> IngestLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    @property
    def _params(self) -> dict[str, Any]:
        return {
            "holder_id": self._holder_id,
            "host": self._me.host,
            "pid": self._me.pid,
            "start": self._me.start,
            "version": __version__,
            "ttl": self._ttl_s,
        }

    def acquire(self) -> None:
        with self._mutex:
            try:
                try:
                    took_over = self._take_once(None)
                except _Unproven as unproven:
                    took_over = self._take_once(self._watch(unproven.holder))
            except psycopg2.errors.LockNotAvailable:
                raise LockHeldError(
                    "another datasync ingest is already running against this database (its "
                    "lease row is locked by a transaction that has not finished)", _HELD_HINT,
                ) from None
            except _Unproven as again:
                raise _running(again.holder) from None
            self._holding = True
        if took_over:
            log.warning("took over the ingest lease from %s", took_over)

    def _take_once(self, stalled: LeaseHolder | None) -> str | None:
        return self._transaction("taking the ingest lease", lambda cur: self._take(cur, stalled))

    def _watch(self, holder: LeaseHolder) -> LeaseHolder:
        """Watch the heartbeat of a holder whose process cannot be looked up from here; raise
        LockHeldError as soon as it renews, return it as last seen when it did not."""
        log.warning(
            "the ingest lease is held by %s in another pid namespace of this host (a restarted "
            "container?); taking it over unless it is renewed within %.0f s",
            holder.describe(), HEARTBEAT_WATCH_S,
        )
        deadline = time.monotonic() + HEARTBEAT_WATCH_S
        while True:
            time.sleep(WATCH_POLL_S)
            current = self._transaction("reading the ingest lease", read_holder)
            if current is None or current.holder_id != holder.holder_id:
                return holder  # released or taken meanwhile: decide afresh
            if current.heartbeat_at != holder.heartbeat_at:
                raise _running(current)
            if time.monotonic() >= deadline:
                return current

    def _take(self, cur: Cursor, stalled: LeaseHolder | None) -> str | None:
        """Take the lease when free, expired or left by a dead process, or from `stalled` (a
        holder seen not to renew) if it still has not; returns what was taken over (None
        for a free lease)."""
        for _ in range(3):
            cur.execute(_INSERT_SQL, self._params)
            if cur.fetchone():
                return None
            cur.execute(SELECT_HOLDER_SQL + " FOR UPDATE")
            row = cur.fetchone()
            if row is None:
                continue  # released between the two statements
            holder = LeaseHolder.from_row(row)
            if holder.holder_id == self._holder_id:
                reason = None
            elif holder.expired:
                reason = (f"{holder.describe()}: it expired {-holder.expires_in_s:.0f} s ago "
                          f"(last renewed {holder.heartbeat_age_s:.0f} s ago)")
            elif process_gone(holder.process, self._me):
                reason = f"a dead holder ({holder.describe()}): its process on this host is gone"
            elif in_other_namespace_here(holder.process, self._me):
                if stalled is None or stalled.holder_id != holder.holder_id:
                    raise _Unproven(holder)
                if stalled.heartbeat_at != holder.heartbeat_at:
                    raise _running(holder)
                reason = (f"a dead holder ({holder.describe()}): it ran in another pid namespace "
                          f"of this host and was not renewed for {holder.heartbeat_age_s:.0f} s")
            else:
                raise _running(holder)
            cur.execute(_TAKE_OVER_SQL, self._params)
            return reason
        raise DatabaseError("the ingest lease kept changing hands while taking it",
                            "rerun in a moment")

    def held(self) -> bool:
        """True while the lease row names this lock and has not expired."""
        with self._mutex:
            if not self._holding:
                return False

            def check(cur: Cursor) -> bool:
                holder = read_holder(cur)
                return holder is not None and holder.holder_id == self._holder_id and (
                    not holder.expired
                )

            try:
                return self._transaction("reading the ingest lease", check)
            except (DatabaseError, psycopg2.Error):
                return False

    def reassert(self) -> bool:
        """Renew the lease (the heartbeat).

        Returns True when it had expired meanwhile (the database was out of reach) and no other
        ingest had taken it, so it was simply renewed. Raises LockHeldError when another ingest
        holds it now or its row is gone, and DatabaseError when the server cannot be reached
        or the row stays locked (try again later).
        """
        with self._mutex:
            if not self._holding:
                return False
            try:
                return self._transaction("renewing the ingest lease", self._renew)
            except psycopg2.Error as exc:  # the row stayed locked: try again at the next beat
                raise operation_error(exc, "renewing the ingest lease", self._dsn) from None

    def fence(self, cur: Cursor) -> bool:
        """Renew the lease inside the caller's transaction, as its last statement before
        COMMIT, or raise LockHeldError when the lease is no longer this lock's.

        The renewal locks the lease row until the caller commits, so no takeover can come
        between this check and the commit. Returns whether the lease had expired meanwhile.
        """
        lapsed = self._renew(cur)
        if lapsed:
            log.warning(LEASE_LAPSED)
        return lapsed

    def _renew(self, cur: Cursor) -> bool:
        cur.execute(_RENEW_SQL, self._params)
        row = cur.fetchone()
        if row is None:
            raise _lost(read_holder(cur))
        return bool(row[0])

    def release(self) -> None:
        """Delete the lease row if it is still this lock's; when the database cannot be
        reached, the lease expires by itself."""
        with self._mutex:
            holding, self._holding = self._holding, False
            try:
                if holding:
                    self._transaction(
                        "releasing the ingest lease",
                        lambda cur: cur.execute(_RELEASE_SQL, self._params),
                    )
            except (DatabaseError, psycopg2.Error):
                pass
            finally:
                self._session.close()

    def _transaction(self, doing: str, body: Callable[[Cursor], T]) -> T:
        """`body` in one short transaction on the lease's own connection. psycopg2's
        LockNotAvailable passes through; other failures are DatabaseError."""
        return self._session.run(doing, body)


def lease_holder(dsn: str) -> LeaseHolder | None:
    """Who holds the ingest lease now (expired or not); None when free or not migrated."""
    conn = connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('ingest_lease') IS NOT NULL")
            row = cur.fetchone()
            holder = read_holder(cur) if row and row[0] else None
        conn.rollback()
    except psycopg2.Error as exc:
        raise operation_error(exc, "reading the ingest lease", dsn) from None
    finally:
        conn.close()
    return holder


def ingest_running(dsn: str) -> bool:
    """Whether an ingest holds the lease now: not expired, and its process not known to be
    dead (a run recorded as running without it is a process that died)."""
    holder = lease_holder(dsn)
    return holder is not None and holder.live()
