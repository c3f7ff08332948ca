"""A connection of one's own, used one short transaction at a time.

The checkpoint store and the ingest lease both need this: thread-safe calls, each one
transaction, and a connection that died between calls (a server restart, a terminated backend)
replaced once before the failure is reported.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import psycopg2

from .db import Connection, connect, connection_lost, operation_error

T = TypeVar("T")
Cursor = psycopg2.extensions.cursor


class Session:
    """Runs bodies in transactions on one connection (opened from `dsn`, or given)."""

    def __init__(
        self,
        target: str | Connection,
        *,
        passthrough: tuple[type[psycopg2.Error], ...] = (),
        prepare: Callable[[Cursor], None] | None = None,
    ) -> None:
        """`passthrough`: psycopg2 errors the caller handles itself (raised as they are);
        `prepare`: run at the start of every transaction (a lock timeout, say)."""
        self._dsn = target if isinstance(target, str) else None
        self._conn: Connection | None = None if isinstance(target, str) else target
        self._passthrough = passthrough
        self._prepare = prepare
        self._mutex = threading.Lock()

    def run(self, doing: str, body: Callable[[Cursor], T]) -> T:
        """`body` in one transaction; redone once on a new connection when the old one died.
        Failures are DatabaseError naming `doing`."""
        with self._mutex:
            for attempt in (1, 2):
                conn = self._connection()
                try:
                    with conn.cursor() as cur:
                        if self._prepare is not None:
                            self._prepare(cur)
                        result = body(cur)
                    conn.commit()
                    return result
                except self._passthrough:
                    self._rollback(conn)
                    raise
                except psycopg2.Error as exc:
                    lost = connection_lost(exc, conn)
                    self._rollback(conn)
                    if lost and self._dsn is not None and attempt == 1:
                        self._drop()
                        continue
                    raise operation_error(exc, doing, self._dsn) from None
                except BaseException:
                    self._rollback(conn)
                    raise
        raise AssertionError("unreachable")

    def _connection(self) -> Connection:
        if (self._conn is None or self._conn.closed) and self._dsn is not None:
            self._conn = connect(self._dsn)
        assert self._conn is not None
        return self._conn

    def _rollback(self, conn: Connection) -> None:
        if conn.closed:
            return
        try:
            conn.rollback()
        except psycopg2.Error:
            self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            conn.close()

    def close(self) -> None:
        """Close the connection if this session opened it."""
        if self._dsn is not None:
            with self._mutex:
                self._drop()
