"""A mark inside a database saying which datasync tool created it, so that tool may reuse or
drop it later without ever touching a database that holds someone else's data."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg2

from ..errors import DatabaseError
from .db import connect_if_exists, describe, operation_error

MARK_TABLE = "datasync_owner"

_USER_TABLES_SQL = """
SELECT n.nspname || '.' || c.relname FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%%' AND n.nspname NOT LIKE 'pg\\_temp%%'
  AND c.relname <> %s
ORDER BY 1
"""


@dataclass(frozen=True)
class DatabaseState:
    """Whether a database exists, who marked it, and the tables it holds (the mark aside)."""

    exists: bool
    owner: str | None = None
    tables: tuple[str, ...] = ()


def database_state(dsn: str) -> DatabaseState:
    """What is in the DSN's database; DatabaseError when the server cannot be reached."""
    conn = connect_if_exists(dsn)
    if conn is None:
        return DatabaseState(exists=False)
    try:
        with conn.cursor() as cur:
            cur.execute(_USER_TABLES_SQL, (MARK_TABLE,))
            tables = tuple(str(row[0]) for row in cur.fetchall())
            cur.execute("SELECT to_regclass(%s) IS NOT NULL", (MARK_TABLE,))
            row = cur.fetchone()
            owner = None
            if row and row[0]:
                cur.execute(f"SELECT owner FROM {MARK_TABLE} ORDER BY marked_at LIMIT 1")
                found = cur.fetchone()
                owner = str(found[0]) if found else None
        conn.rollback()
    except psycopg2.Error as exc:
        raise operation_error(exc, "looking at what the database holds", dsn) from None
    finally:
        conn.close()
    return DatabaseState(exists=True, owner=owner, tables=tables)


def mark_database(dsn: str, owner: str) -> None:
    """Record that `owner` created (or was given, empty) the DSN's database."""
    conn = connect_if_exists(dsn)
    if conn is None:
        raise DatabaseError(f"database {describe(dsn)} does not exist; nothing to mark")
    try:
        with conn.cursor() as cur:
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS {MARK_TABLE} (owner TEXT PRIMARY KEY, "
                "marked_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            cur.execute(
                f"INSERT INTO {MARK_TABLE} (owner) VALUES (%s) ON CONFLICT DO NOTHING", (owner,)
            )
        conn.commit()
    except psycopg2.Error as exc:
        raise operation_error(exc, "marking the database", dsn) from None
    finally:
        conn.close()
