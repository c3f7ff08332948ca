"""IngestLock: at most one ingest per database, held by a session-level advisory lock.

The lock lives as long as its dedicated connection, so a crashed process releases it at once
(the server ends the session) and no stale lock file can block the next run.
"""

from __future__ import annotations

from types import TracebackType

import psycopg2

from ..errors import LockHeldError
from .db import Connection, connect, operation_error

# Fixed key shared by every datasync version: "datasync" in ASCII.
INGEST_LOCK_KEY = 0x6461746173796E63

_HOLDER_SQL = """
SELECT a.pid, a.application_name, a.backend_start, host(a.client_addr)
FROM pg_locks l
LEFT JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.classid = %s AND l.objid = %s AND l.objsubid = 1
  AND l.pid <> pg_backend_pid()
LIMIT 1
"""


class IngestLock:
    """Context manager: acquire on enter (or raise LockHeldError), release on exit."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn: Connection | None = None

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

    def acquire(self) -> None:
        conn = connect(self._dsn, autocommit=True)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_try_advisory_lock(%s)", (INGEST_LOCK_KEY,))
                row = cur.fetchone()
                if row and row[0]:
                    self._conn = conn
                    return
                holder = self._describe_holder(cur)
        except psycopg2.Error as exc:
            conn.close()
            raise operation_error(exc, "taking the ingest lock", self._dsn) from None
        conn.close()
        raise LockHeldError(
            "another datasync ingest is already running against this database" + holder,
            "wait for it to finish or stop it; two ingests at once are refused",
        )

    @staticmethod
    def _describe_holder(cur: psycopg2.extensions.cursor) -> str:
        high, low = INGEST_LOCK_KEY >> 32, INGEST_LOCK_KEY & 0xFFFFFFFF
        try:
            cur.execute(_HOLDER_SQL, (high, low))
            row = cur.fetchone()
        except psycopg2.Error:
            return ""
        if not row:
            return ""
        pid, application, started, client = row
        parts = [f"pid {pid}"]
        if application:
            parts.append(f"application {application}")
        if client:
            parts.append(f"from {client}")
        if started is not None:
            parts.append(f"connected since {started:%Y-%m-%d %H:%M:%S %Z}".rstrip())
        return f" (server backend {', '.join(parts)})"

    def held(self) -> bool:
        """True while the lock's session is alive; a dead session means the lock is gone."""
        conn = self._conn
        if conn is None or conn.closed:
            return False
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
            return True
        except psycopg2.Error:
            return False

    def reassert(self) -> bool:
        """Check the lock is still ours; if its session died, take it again.

        Returns True when the lock had to be taken again. Raises LockHeldError when another ingest
        took it meanwhile, and DatabaseError when the server cannot be reached (try later).
        """
        if self.held():
            return False
        self.release()
        self.acquire()
        return True

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None or conn.closed:
            return
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(%s)", (INGEST_LOCK_KEY,))
        except psycopg2.Error:
            pass  # closing the session below releases it anyway
        finally:
            conn.close()


def ingest_running(dsn: str) -> bool:
    """Whether some session holds the ingest lock now (a run recorded as running without it
    is a process that died)."""
    conn = connect(dsn, autocommit=True)
    try:
        with conn.cursor() as cur:
            high, low = INGEST_LOCK_KEY >> 32, INGEST_LOCK_KEY & 0xFFFFFFFF
            cur.execute(_HOLDER_SQL, (high, low))
            return cur.fetchone() is not None
    except psycopg2.Error as exc:
        raise operation_error(exc, "looking for a running ingest", dsn) from None
    finally:
        conn.close()
