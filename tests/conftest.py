"""Shared fixtures. Database fixtures: a real PostgreSQL, one fresh database per test.

The server is TEST_DATABASE_URL when set, else a throwaway cluster started in a temp dir.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg2
import psycopg2.extensions
import pytest
from psycopg2 import sql

from datasync_cli.localpg import LocalPostgres, find_pg_bin
from datasync_cli.sink import migrate


def _admin(dsn: str) -> psycopg2.extensions.connection:
    conn = psycopg2.connect(dsn, application_name="datasync-tests", connect_timeout=10)
    conn.autocommit = True
    return conn


def _with_db(dsn: str, dbname: str) -> str:
    return psycopg2.extensions.make_dsn(dsn, dbname=dbname)


def _create(admin: psycopg2.extensions.connection, name: str, template: str) -> None:
    with admin.cursor() as cur:
        cur.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {} ENCODING 'UTF8'").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )


def _drop(admin: psycopg2.extensions.connection, name: str) -> None:
    with admin.cursor() as cur:
        cur.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="session")
def pg_dsn_base() -> Iterator[str]:
    """DSN of a server the tests may create and drop databases on."""
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    if find_pg_bin() is None:
        pytest.skip("no PostgreSQL: set TEST_DATABASE_URL or install the server (initdb, pg_ctl)")
    # Under /tmp with mode 0755 so the postgres OS user can reach it when tests run as root.
    root = Path(tempfile.mkdtemp(prefix="datasync-pg-", dir="/tmp"))
    root.chmod(0o755)
    server = LocalPostgres(root / "data")
    try:
        yield server.ensure_started()
    finally:
        try:
            server.stop()
        finally:
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def _pg_admin(pg_dsn_base: str) -> Iterator[psycopg2.extensions.connection]:
    conn = _admin(pg_dsn_base)
    yield conn
    conn.close()


@pytest.fixture(scope="session")
def _migrated_template(
    pg_dsn_base: str, _pg_admin: psycopg2.extensions.connection
) -> Iterator[str]:
    """A migrated database cloned by `migrated_url`: cloning is cheaper than migrating."""
    name = f"datasync_tmpl_{uuid.uuid4().hex[:12]}"
    _create(_pg_admin, name, "template0")
    migrate(_with_db(pg_dsn_base, name), create_database=False)
    yield name
    _drop(_pg_admin, name)


def _fresh_database(
    pg_dsn_base: str, admin: psycopg2.extensions.connection, template: str
) -> Iterator[str]:
    name = f"datasync_test_{uuid.uuid4().hex[:12]}"
    _create(admin, name, template)
    try:
        yield _with_db(pg_dsn_base, name)
    finally:
        _drop(admin, name)


@pytest.fixture
def database_url(pg_dsn_base: str, _pg_admin: psycopg2.extensions.connection) -> Iterator[str]:
    """DSN of a fresh, empty database, dropped after the test."""
    yield from _fresh_database(pg_dsn_base, _pg_admin, "template0")


@pytest.fixture
def migrated_url(
    pg_dsn_base: str, _pg_admin: psycopg2.extensions.connection, _migrated_template: str
) -> Iterator[str]:
    """DSN of a fresh database with the datasync schema, dropped after the test."""
    yield from _fresh_database(pg_dsn_base, _pg_admin, _migrated_template)


RoleFactory = Callable[[str], tuple[str, str]]


@pytest.fixture
def make_role(_pg_admin: psycopg2.extensions.connection) -> Iterator[RoleFactory]:
    """Roles for privilege tests: `make_role(dsn)` creates a LOGIN role holding no privileges
    and returns its name and `dsn` as that role. Each is dropped afterwards, with whatever it
    owns or was granted in that database."""
    made: list[tuple[str, str]] = []

    def make(dsn: str) -> tuple[str, str]:
        name = f"datasync_role_{uuid.uuid4().hex[:10]}"
        with _pg_admin.cursor() as cur:
            cur.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'role-pw'").format(
                sql.Identifier(name)))
        made.append((name, dsn))
        return name, psycopg2.extensions.make_dsn(dsn, user=name, password="role-pw")

    yield make
    for name, dsn in made:
        try:
            conn = _admin(dsn)
        except psycopg2.OperationalError:
            conn = None  # the database is gone, and with it all the role had there
        if conn is not None:
            try:
                with conn.cursor() as cur:
                    cur.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
            finally:
                conn.close()
        with _pg_admin.cursor() as cur:
            cur.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))
