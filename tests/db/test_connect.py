"""Connection failures become one clear line with a hint, and never show the password."""

from __future__ import annotations

import uuid

import psycopg2
import psycopg2.extensions
import pytest
from psycopg2 import sql

from datasync_cli.errors import ConfigError, DatabaseError, DatasyncError
from datasync_cli.localpg import free_port
from datasync_cli.sink import check_dsn, connect, describe, drop_database, scrub

pytestmark = pytest.mark.db

PASSWORD = "s3cr3t-Pa55%w0rd"


def url_with_password(base: str, **overrides: str) -> str:
    params = psycopg2.extensions.parse_dsn(base)
    params.update(overrides)
    host = params.get("host", "127.0.0.1")
    port = params.get("port", "5432")
    user = params.get("user", "postgres")
    return f"postgresql://{user}:s3cr3t-Pa55%25w0rd@{host}:{port}/{params.get('dbname', '')}"


def assert_clean(error: DatasyncError) -> None:
    text = f"{error}\n{error.message}\n{error.hint}\n{error!r}"
    assert PASSWORD not in text
    assert "s3cr3t-Pa55%25w0rd" not in text
    assert "\n" not in str(error)


def test_nothing_listening(pg_dsn_base: str) -> None:
    dsn = url_with_password(pg_dsn_base, host="127.0.0.1", port=str(free_port()))
    with pytest.raises(DatabaseError) as caught:
        connect(dsn)
    assert caught.value.message.startswith("cannot connect to PostgreSQL at 127.0.0.1:")
    assert caught.value.message.endswith(": connection refused")
    assert caught.value.hint == (
        "start PostgreSQL or point --database-url / DATABASE_URL at a running server"
    )
    assert caught.value.exit_code == 4
    assert_clean(caught.value)


def test_unknown_user(pg_dsn_base: str) -> None:
    dsn = url_with_password(pg_dsn_base, user=f"nobody_{uuid.uuid4().hex[:6]}")
    with pytest.raises(DatabaseError) as caught:
        connect(dsn)
    assert "no such user" in caught.value.message or "credentials" in caught.value.message
    assert_clean(caught.value)


def test_missing_database_without_and_with_creation(pg_dsn_base: str) -> None:
    name = f"datasync_auto_{uuid.uuid4().hex[:10]}"
    dsn = url_with_password(pg_dsn_base, dbname=name)
    with pytest.raises(DatabaseError) as caught:
        connect(dsn)
    assert caught.value.message == f"database {describe(dsn)} does not exist"
    assert caught.value.hint is not None and "datasync migrate" in caught.value.hint
    assert_clean(caught.value)
    try:
        conn = connect(dsn, create_database=True)
        with conn.cursor() as cur:
            cur.execute("SELECT current_database(), current_setting('application_name')")
            assert cur.fetchone() == (name, "datasync")
        conn.close()
        connect(dsn, create_database=True).close()  # existing now: just connects
    finally:
        admin = psycopg2.connect(pg_dsn_base)
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))
        admin.close()


def test_malformed_url_hides_the_password() -> None:
    with pytest.raises(ConfigError) as caught:
        connect("postgresql://postgres:s3cr3t-Pa55%25w0rd@[::1:5432/x")
    assert "malformed" in caught.value.message
    assert caught.value.exit_code == 2
    assert_clean(caught.value)


@pytest.mark.parametrize(
    ("dsn", "what"),
    [
        ("postgresql://postgres:s3cr3t-Pa55%25w0rd@127.0.0.1:5432:5432/x", "port"),
        ("host=127.0.0.1 port=99999 password=s3cr3t-Pa55%w0rd dbname=x", "port"),
        ("postgresql://postgres:s3cr3t-Pa55%25w0rd@127.0.0.1/x?sslmode=bogus", "sslmode"),
        ("postgresql://postgres:s3cr3t-Pa55%25w0rd@127.0.0.1/x?fast=1", "malformed"),
    ],
)
def test_dsn_libpq_refuses_before_connecting_is_a_setting_error(dsn: str, what: str) -> None:
    """Both the early check and, behind it, a refused connection say exit 2 and the fix."""
    for attempt in (check_dsn, connect):
        with pytest.raises(ConfigError) as caught:
            attempt(dsn)
        assert what in caught.value.message
        assert_clean(caught.value)


def test_unknown_host() -> None:
    with pytest.raises(DatabaseError) as caught:
        connect("postgresql://postgres:s3cr3t-Pa55%25w0rd@no-such-host.invalid:5432/x")
    assert "no-such-host.invalid:5432/x" in caught.value.message
    assert_clean(caught.value)


@pytest.mark.parametrize(
    "text",
    [
        "postgresql://postgres:s3cr3t-Pa55%25w0rd@host/db",
        "password=s3cr3t-Pa55%w0rd host=x",
        "password='s3cr3t-Pa55%w0rd' host=x",
        "failed for s3cr3t-Pa55%w0rd",
    ],
)
def test_scrub(text: str) -> None:
    cleaned = scrub(text, "postgresql://postgres:s3cr3t-Pa55%25w0rd@host/db")
    assert "s3cr3t" not in cleaned
    assert "***" in cleaned


def test_describe_never_shows_the_password() -> None:
    dsn = "postgresql://postgres:s3cr3t-Pa55%25w0rd@db.example:6543/ingestion"
    assert describe(dsn) == "db.example:6543/ingestion"


def test_drop_database(pg_dsn_base: str) -> None:
    name = f"datasync_drop_{uuid.uuid4().hex[:10]}"
    dsn = psycopg2.extensions.make_dsn(pg_dsn_base, dbname=name)
    holder = connect(dsn, create_database=True)  # a session the drop must end
    try:
        assert drop_database(dsn) is True
        assert holder.closed or _is_dead(holder)
        assert drop_database(dsn) is False
        with pytest.raises(DatabaseError) as caught:
            connect(dsn)
        assert "does not exist" in caught.value.message
    finally:
        holder.close()
    with pytest.raises(DatabaseError):
        drop_database(psycopg2.extensions.make_dsn(pg_dsn_base, dbname="postgres"))


def _is_dead(conn: psycopg2.extensions.connection) -> bool:
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
    except psycopg2.Error:
        return True
    return False
