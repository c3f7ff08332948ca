"""Schema migrations: numbered .sql files applied in order, each with its ledger row in one
transaction, under a transaction-level advisory lock so concurrent runs are safe."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import psycopg2

from ..errors import DatabaseError
from .db import Connection, connect, operation_error, server_encoding

# Fixed key of the lock serializing migration runs on one database ("datasyn" + "m").
MIGRATION_LOCK_KEY = 0x6461746173796E6D

_FILE_NAME = re.compile(r"^(\d{4})_([A-Za-z0-9_]+)\.sql$")

_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    TEXT PRIMARY KEY,
    name       TEXT,
    applied_at TIMESTAMPTZ DEFAULT now()
)
"""


@dataclass(frozen=True, slots=True)
class Migration:
    version: str
    name: str
    sql: str


def available() -> list[Migration]:
    """Every migration shipped with the package, in version order."""
    folder = resources.files("datasync_cli") / "migrations"
    found = []
    for entry in folder.iterdir():
        match = _FILE_NAME.match(entry.name)
        if match:
            found.append(Migration(match[1], match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise DatabaseError("two migration files share a version number",
                            "reinstall datasync; the package is damaged")
    return found


def applied_versions(conn: Connection) -> list[str]:
    """Versions recorded in the ledger ([] when there is no ledger yet)."""
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")
        row = cur.fetchone()
        if not row or not row[0]:
            conn.rollback()
            return []
        cur.execute("SELECT version FROM schema_migrations ORDER BY version")
        versions = [str(r[0]) for r in cur.fetchall()]
    conn.rollback()
    return versions


def migrate(target: str | Connection, *, create_database: bool = True) -> list[str]:
    """Apply pending migrations; returns the versions applied now ([] when up to date).

    `target` is a DSN (connected here, the database created when missing) or an open
    connection (left open, in autocommit=False).
    """
    if isinstance(target, str):
        conn = connect(target, create_database=create_database)
        try:
            return _migrate(conn, target)
        finally:
            conn.close()
    return _migrate(target, None)


def _migrate(conn: Connection, dsn: str | None) -> list[str]:
    conn.autocommit = False
    encoding = server_encoding(conn)
    if encoding.upper() not in ("UTF8", "UTF-8"):
        raise DatabaseError(
            f"the database uses encoding {encoding}; datasync stores events as UTF-8",
            "create the database with ENCODING 'UTF8' (or let datasync create it)",
        )
    done = set(applied_versions(conn))
    applied: list[str] = []
    for migration in available():
        if migration.version in done:
            continue
        try:
            if _apply(conn, migration):
                applied.append(migration.version)
        except psycopg2.Error as exc:
            conn.rollback()
            raise operation_error(
                exc, f"applying migration {migration.version}_{migration.name}", dsn
            ) from None
    return applied


def _apply(conn: Connection, migration: Migration) -> bool:
    """Run one migration and its ledger row in one transaction; False if another run won."""
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
        cur.execute(_LEDGER)
        cur.execute("SELECT 1 FROM schema_migrations WHERE version = %s", (migration.version,))
        if cur.fetchone():
            conn.rollback()
            return False
        cur.execute(migration.sql)
        cur.execute(
            "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
            (migration.version, migration.name),
        )
    conn.commit()
    return True
