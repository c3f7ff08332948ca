"""What `datasync check` asks of the database: reachable, writable, migrated, what it holds.

Read-only: nothing is created or changed, so a check can run beside an ingest.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import psycopg2

from .db import Connection, connect_if_exists, describe, may_create_databases, operation_error
from .lock import ingest_running
from .migrations import applied_versions, available

# What ingest needs on every datasync table (docs/operations.md, "Database privileges").
TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE")
TABLES = (
    "schema_migrations", "ingested_events", "staging_events", "cursor_state", "rejected_events",
    "ingest_runs", "event_conflicts", "ingest_lease",
)
SEQUENCES = ("ingest_runs_run_id_seq", "rejected_events_id_seq", "event_conflicts_conflict_id_seq")


@dataclass(frozen=True)
class DatabaseProbe:
    """The database as ingest would find it; `missing_privileges` names each GRANT lacking."""

    where: str
    exists: bool
    role: str | None = None
    may_create_database: bool | None = None  # asked only when the database is missing
    read_only: bool = False
    schema_versions: list[str] = field(default_factory=list)
    pending_migrations: list[str] = field(default_factory=list)
    missing_privileges: list[str] = field(default_factory=list)
    ingested: int = 0
    rejected: int = 0
    stored_bytes: int = 0
    last_run_status: str | None = None
    last_run_total: int | None = None
    ingest_running: bool = False

    @property
    def stored(self) -> int:
        return self.ingested + self.rejected

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "stored": self.stored}


def probe_database(dsn: str) -> DatabaseProbe:
    """Look without touching; DatabaseError when the server cannot be reached or refuses."""
    where = describe(dsn)
    conn = connect_if_exists(dsn)
    if conn is None:
        return DatabaseProbe(where, exists=False, may_create_database=may_create_databases(dsn))
    try:
        conn.set_session(readonly=True)
        found = _inspect(conn, where)
    except psycopg2.Error as exc:
        raise operation_error(exc, "looking at the database", dsn) from None
    finally:
        conn.close()
    return replace(found, ingest_running=ingest_running(dsn))


def _one(conn: Connection, statement: str, params: tuple[Any, ...] = ()) -> Any:
    with conn.cursor() as cur:
        cur.execute(statement, params)
        row = cur.fetchone()
    return row[0] if row else None


def _inspect(conn: Connection, where: str) -> DatabaseProbe:
    role = str(_one(conn, "SELECT current_user"))
    read_only = bool(_one(
        conn,
        "SELECT pg_is_in_recovery() OR current_setting('default_transaction_read_only') = 'on'",
    ))
    applied = applied_versions(conn)
    pending = [m.version for m in available() if m.version not in applied]
    missing: list[str] = []
    if pending:
        schema = _one(conn, "SELECT current_schema()")
        if schema is None:
            missing.append("a schema to create tables in (USAGE on schema public)")
        elif not _one(conn, "SELECT has_schema_privilege(%s, 'CREATE')", (schema,)):
            missing.append(f"CREATE on schema {schema}")
    if not applied:
        return DatabaseProbe(where, True, role, read_only=read_only, pending_migrations=pending,
                             missing_privileges=missing)
    for table in TABLES:
        if _one(conn, "SELECT to_regclass(%s) IS NULL", (table,)):
            continue
        lacking = [p for p in TABLE_PRIVILEGES
                   if not _one(conn, "SELECT has_table_privilege(%s, %s)", (table, p))]
        if lacking:
            missing.append(f"{', '.join(lacking)} on table {table}")
    for sequence in SEQUENCES:
        if _one(conn, "SELECT to_regclass(%s) IS NULL", (sequence,)):
            continue
        if not _one(conn, "SELECT has_sequence_privilege(%s, 'USAGE')", (sequence,)):
            missing.append(f"USAGE on sequence {sequence}")
    ingested, rejected, size, run = 0, 0, 0, None
    if not any(m.startswith("SELECT") for m in missing):
        with conn.cursor() as cur:
            cur.execute(
                "SELECT (SELECT count(*) FROM ingested_events), "
                "(SELECT count(*) FROM rejected_events), pg_total_relation_size('ingested_events')"
                " + pg_total_relation_size('rejected_events')"
            )
            ingested, rejected, size = cur.fetchone() or (0, 0, 0)
            cur.execute("SELECT status, source_total FROM ingest_runs ORDER BY run_id DESC LIMIT 1")
            run = cur.fetchone()
    conn.rollback()
    return DatabaseProbe(
        where, True, role,
        read_only=read_only,
        schema_versions=applied,
        pending_migrations=pending,
        missing_privileges=missing,
        ingested=int(ingested),
        rejected=int(rejected),
        stored_bytes=int(size),
        last_run_status=str(run[0]) if run else None,
        last_run_total=None if not run or run[1] is None else int(run[1]),
    )
