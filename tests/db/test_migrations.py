"""Migrations against a real PostgreSQL: tables per the contract, ledger, reruns, concurrency."""

from __future__ import annotations

import threading
import uuid

import psycopg2
import psycopg2.extensions
import pytest
from psycopg2 import sql

from datasync_cli.errors import DatabaseError
from datasync_cli.sink import applied_versions, available, connect, migrate

pytestmark = pytest.mark.db

CONTRACT_COLUMNS = {
    "ingested_events": {
        "id": "text",
        "event_type": "text",
        "timestamp": "timestamp with time zone",
        "data": "jsonb",
        "ingested_at": "timestamp with time zone",
    },
    "staging_events": {
        "id": "text",
        "event_type": "text",
        "timestamp": "timestamp with time zone",
        "data": "jsonb",
    },
    "rejected_events": {
        "id": "bigint",
        "raw_sha256": "text",
        "event_id": "text",
        "reason": "text",
        "raw": "text",
        "rejected_at": "timestamp with time zone",
    },
    "schema_migrations": {
        "version": "text",
        "name": "text",
        "applied_at": "timestamp with time zone",
    },
}


def columns(dsn: str, table: str) -> dict[str, str]:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = %s",
            (table,),
        )
        found = dict(cur.fetchall())
    conn.close()
    return found


def scalar(dsn: str, query: str, params: tuple[object, ...] = ()) -> object:
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(query, params)
            row = cur.fetchone()
            return row[0] if row else None
    finally:
        conn.close()


def test_first_run_creates_the_contract_tables(database_url: str) -> None:
    applied = migrate(database_url)
    assert applied == [m.version for m in available()]
    assert applied[0] == "0001"
    for table, expected in CONTRACT_COLUMNS.items():
        assert columns(database_url, table) == expected, table
    state = columns(database_url, "cursor_state")
    assert {"reader_id", "hi_ms", "lo_ms", "cursor", "endpoint", "last_ts_ms", "last_id",
            "events", "rejected", "finished", "created_at", "updated_at"} <= set(state)
    runs = columns(database_url, "ingest_runs")
    assert {"run_id", "started_at", "finished_at", "status", "source_total", "inserted",
            "rejected", "message"} <= set(runs)


def test_staging_is_unlogged_and_ids_are_the_primary_key(migrated_url: str) -> None:
    persistence = scalar(
        migrated_url, "SELECT relpersistence FROM pg_class WHERE relname = 'staging_events'"
    )
    assert persistence == "u"
    key = scalar(
        migrated_url,
        "SELECT string_agg(a.attname, ',') FROM pg_index i "
        "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
        "WHERE i.indrelid = 'ingested_events'::regclass AND i.indisprimary",
    )
    assert key == "id"


def test_ledger_records_each_file_and_rerun_is_a_no_op(database_url: str) -> None:
    migrate(database_url)
    conn = connect(database_url)
    try:
        assert applied_versions(conn) == [m.version for m in available()]
    finally:
        conn.close()
    assert migrate(database_url) == []
    assert migrate(database_url) == []
    count = scalar(database_url, "SELECT count(*) FROM schema_migrations")
    assert count == len(available())


def test_open_connection_is_accepted_and_left_open(database_url: str) -> None:
    conn = connect(database_url)
    try:
        assert migrate(conn) == [m.version for m in available()]
        assert not conn.closed
        assert migrate(conn) == []
    finally:
        conn.close()


def test_concurrent_runs_apply_each_migration_once(database_url: str) -> None:
    results: list[list[str]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def run() -> None:
        try:
            barrier.wait()
            results.append(migrate(database_url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    applied = sorted(v for r in results for v in r)
    assert applied == [m.version for m in available()]
    assert scalar(database_url, "SELECT count(*) FROM schema_migrations") == len(available())


def test_missing_database_is_created(pg_dsn_base: str) -> None:
    name = f"datasync_new_{uuid.uuid4().hex[:10]}"
    dsn = psycopg2.extensions.make_dsn(pg_dsn_base, dbname=name)
    try:
        assert migrate(dsn) == [m.version for m in available()]
        encoding = scalar(dsn, "SHOW server_encoding")
        assert encoding == "UTF8"
    finally:
        admin = psycopg2.connect(pg_dsn_base)
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        admin.close()


def test_missing_database_without_creation_says_run_migrate(pg_dsn_base: str) -> None:
    dsn = psycopg2.extensions.make_dsn(pg_dsn_base, dbname=f"datasync_absent_{uuid.uuid4().hex}")
    with pytest.raises(DatabaseError) as caught:
        migrate(dsn, create_database=False)
    assert "does not exist" in caught.value.message
    assert caught.value.hint is not None and "datasync migrate" in caught.value.hint


def test_non_utf8_database_is_refused(pg_dsn_base: str) -> None:
    name = f"datasync_latin1_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(pg_dsn_base)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(
            sql.SQL(
                "CREATE DATABASE {} ENCODING 'LATIN1' TEMPLATE template0 "
                "LC_COLLATE 'C' LC_CTYPE 'C'"
            ).format(sql.Identifier(name))
        )
    try:
        with pytest.raises(DatabaseError) as caught:
            migrate(psycopg2.extensions.make_dsn(pg_dsn_base, dbname=name))
        assert "LATIN1" in caught.value.message
    finally:
        with admin.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.close()
