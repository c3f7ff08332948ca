"""Connections to PostgreSQL and the translation of its failures into one clear line.

psycopg2 and libpq messages can quote the DSN, password included; everything that leaves this
module goes through `scrub`.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

import psycopg2
import psycopg2.extensions
from psycopg2 import errorcodes, sql

from ..errors import ConfigError, DatabaseError, DatasyncError
from ..redact import Scrubber, dsn_password, is_keyword_dsn
from ..settings import DSN_EXAMPLE

Connection = psycopg2.extensions.connection

APPLICATION_NAME = "datasync"
CONNECT_TIMEOUT_S = 10
# A pooler that has just failed to log in to a missing database (PgBouncer) holds the next
# login for its retry delay (server_login_retry, 15 s by default) before trying again.
CREATED_CONNECT_TIMEOUT_S = 30
MAINTENANCE_DATABASES = ("postgres", "template1")


# SQLSTATEs after which the session is gone and a new connection is the only way on.
_SESSION_GONE = {
    errorcodes.ADMIN_SHUTDOWN,
    errorcodes.CRASH_SHUTDOWN,
    errorcodes.CANNOT_CONNECT_NOW,
    errorcodes.IDLE_SESSION_TIMEOUT,
}

_MIGRATE_HINT = "run `datasync migrate` to create it, or point --database-url at an existing one"
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
# libpq says "invalid ..." for a DSN it cannot use before it has talked to any server.
_SYNTAX = re.compile(r"^(invalid dsn: )?(invalid |missing \"=\"|unterminated |end of string )")
_START_HINT = "start PostgreSQL or point --database-url / DATABASE_URL at a running server"


def scrub(text: str, dsn: str | None = None) -> str:
    """`text` without the DSN's password, in any of the spellings libpq may echo back."""
    scrubber = Scrubber()
    if dsn:
        scrubber.add(dsn_password(dsn))
        with contextlib.suppress(psycopg2.Error):
            scrubber.add(psycopg2.extensions.parse_dsn(dsn).get("password"))
    return scrubber(text)


def describe(dsn: str) -> str:
    """host:port/dbname of a DSN, for messages (never the user's password)."""
    try:
        params = psycopg2.extensions.parse_dsn(dsn)
    except psycopg2.Error:
        return "the configured database"
    host = params.get("host") or params.get("hostaddr") or "localhost"
    port = params.get("port") or "5432"
    return f"{host}:{port}/{params.get('dbname') or params.get('user') or 'postgres'}"


def first_line(exc: BaseException, dsn: str | None = None) -> str:
    """The first line of an error, scrubbed and without libpq's connection prefix."""
    text = scrub(str(exc), dsn).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    line = lines[0] if lines else type(exc).__name__
    # libpq prefixes server errors with "connection to server at ... failed: FATAL:  ".
    line = re.sub(r"^connection to server at .*? failed: ", "", line)
    return re.sub(r"^(FATAL|ERROR):\s+", "", line)


def _without_quoted_dsn(text: str, dsn: str) -> str:
    """libpq quotes the whole DSN after some syntax errors; the message needs only the why."""
    return text.replace(f': "{dsn}"', "").replace(f'"{dsn}"', "the DSN")


def check_dsn(dsn: str) -> None:
    """Raise ConfigError (exit 2) for a DSN libpq would refuse before reaching any server,
    naming the fix: syntax, a port that is not a number, an unknown sslmode."""
    try:
        params = psycopg2.extensions.parse_dsn(dsn)
    except psycopg2.Error as exc:
        raise syntax_error(exc, dsn) from None
    for port in str(params.get("port") or "5432").split(","):
        if not (port.strip().isdigit() and 1 <= int(port) <= 65535):
            example = "port=5432" if is_keyword_dsn(dsn) else "postgresql://USER@HOST:5432/DBNAME"
            raise ConfigError(
                f"the database URL's port {port!r} is not a port number",
                f"use a number from 1 to 65535, for example {example}",
            )
    sslmode = params.get("sslmode")
    if sslmode is not None and sslmode not in SSL_MODES:
        raise ConfigError(
            f"the database URL's sslmode {sslmode!r} is not one PostgreSQL knows",
            f"use one of {', '.join(SSL_MODES)}, for example sslmode=require",
        )


def syntax_error(exc: BaseException, dsn: str) -> ConfigError:
    """A DSN libpq could not use, as a setting error naming the fix."""
    detail = _without_quoted_dsn(first_line(exc, dsn), scrub(dsn, dsn))
    detail = re.sub(r"^invalid dsn: ", "", detail)
    return ConfigError(f"the database URL is malformed: {detail}", DSN_EXAMPLE)


def connect_error(exc: BaseException, dsn: str) -> DatasyncError:
    """A connection failure as one line naming the server, plus what to do about it."""
    where = describe(dsn)
    detail = first_line(exc, dsn)
    lowered = str(exc).lower()
    if getattr(exc, "pgcode", None) is None and _SYNTAX.match(str(exc).strip()):
        return syntax_error(exc, dsn)
    if "connection refused" in lowered or "no such file or directory" in lowered:
        return DatabaseError(f"cannot connect to PostgreSQL at {where}: connection refused",
                             _START_HINT)
    if "could not translate host name" in lowered:
        return DatabaseError(f"cannot connect to PostgreSQL at {where}: unknown host",
                             "check the host name in --database-url / DATABASE_URL")
    if "timeout expired" in lowered or "timed out" in lowered:
        return DatabaseError(f"cannot connect to PostgreSQL at {where}: connection timed out",
                             _START_HINT)
    if "authentication failed" in lowered or "no password supplied" in lowered:
        return DatabaseError(f"PostgreSQL at {where} refused the credentials: {detail}",
                             "check the user and password in --database-url / DATABASE_URL")
    if re.search(r'role ".*" does not exist', str(exc)):
        return DatabaseError(f"PostgreSQL at {where} has no such user: {detail}",
                             "check the user in --database-url / DATABASE_URL")
    if re.search(r'database ".*" does not exist', str(exc)):
        return DatabaseError(f"database {where} does not exist", _MIGRATE_HINT)
    if "too many clients" in lowered or "too many connections" in lowered:
        return DatabaseError(f"PostgreSQL at {where} has no free connection slots: {detail}",
                             "lower --workers or raise max_connections on the server")
    if "starting up" in lowered or "shutting down" in lowered or "recovery mode" in lowered:
        return DatabaseError(f"PostgreSQL at {where} is not accepting connections: {detail}",
                             "wait until the server is up, then rerun")
    return DatabaseError(f"cannot connect to PostgreSQL at {where}: {detail}", _START_HINT)


def operation_error(exc: BaseException, doing: str, dsn: str | None = None) -> DatabaseError:
    """A failure of a statement as one line: what we were doing and what PostgreSQL said."""
    detail = first_line(exc, dsn)
    code = getattr(exc, "pgcode", None)
    if code == errorcodes.DISK_FULL:
        return DatabaseError(f"PostgreSQL ran out of disk space while {doing}",
                             "free disk space on the database server and rerun; the last "
                             "checkpoint is intact")
    if code == errorcodes.OUT_OF_MEMORY:
        return DatabaseError(f"PostgreSQL ran out of memory while {doing}",
                             "lower --page-size or --workers, or give the server more memory")
    if code in (errorcodes.INSUFFICIENT_PRIVILEGE, errorcodes.INVALID_SCHEMA_NAME):
        return DatabaseError(f"permission denied while {doing}: {detail}",
                             grant_hint(detail, dsn))
    if code == errorcodes.READ_ONLY_SQL_TRANSACTION:
        return DatabaseError(f"the database is read-only while {doing}",
                             "point --database-url at a writable primary (a standby, or a "
                             "database with default_transaction_read_only on, refuses writes)")
    if code == errorcodes.UNDEFINED_TABLE:
        return DatabaseError(f"a datasync table is missing while {doing}: {detail}",
                             "run `datasync migrate`")
    if code in _SESSION_GONE or (code is None and isinstance(exc, psycopg2.OperationalError)):
        return DatabaseError(f"lost the connection to PostgreSQL while {doing}: {detail}",
                             "check that the server is running, then rerun; the last "
                             "checkpoint is intact")
    return DatabaseError(f"PostgreSQL failed while {doing}: {detail}")


def _role(dsn: str | None) -> str:
    try:
        user = psycopg2.extensions.parse_dsn(dsn).get("user") if dsn else None
    except psycopg2.Error:
        user = None
    return str(user) if user else "<role>"


def grant_hint(detail: str, dsn: str | None) -> str:
    """The GRANT that cures a privilege error, for the DSN's role (docs/operations.md lists
    the full set)."""
    role = _role(dsn)
    schema = re.search(r"for schema (\S+)", detail)
    if schema or "no schema has been selected" in detail:
        name = schema.group(1) if schema else "public"
        return (f"as the schema's owner: GRANT CREATE, USAGE ON SCHEMA {name} TO {role}; "
                "or run the first datasync migrate as the database owner")
    if "for sequence" in detail:
        return ("as the owner of the tables: "
                f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role}")
    if "for table" in detail:
        return ("as the owner of the tables: GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE "
                f"ON ALL TABLES IN SCHEMA public TO {role}")
    if "must be owner" in detail:
        return "run datasync migrate as the owner of the datasync tables"
    if "create database" in detail:
        return f"create the database for {role}, or as a superuser: ALTER ROLE {role} CREATEDB"
    return "grant the database user rights to create and write tables in this database"


def connection_lost(exc: BaseException, conn: Connection | None) -> bool:
    """True when `exc` means the session is gone (killed, restarted, network) and a fresh
    connection can simply redo the rolled-back work."""
    if isinstance(exc, psycopg2.InterfaceError):
        return True
    if not isinstance(exc, psycopg2.OperationalError):
        return False
    code = getattr(exc, "pgcode", None)
    if code in _SESSION_GONE or (code or "").startswith("08"):
        return True
    return code is None or (conn is not None and conn.closed != 0)


def _open(dsn: str, **overrides: Any) -> Connection:
    params: dict[str, Any] = {
        "application_name": APPLICATION_NAME,
        "connect_timeout": CONNECT_TIMEOUT_S,
        "client_encoding": "UTF8",
        # A silently vanished server (network partition, VM gone) surfaces as a lost
        # connection within about a minute instead of a read that blocks forever.
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
    }
    conn: Connection = psycopg2.connect(dsn, **{**params, **overrides})
    return conn


def _missing_database(exc: psycopg2.Error) -> bool:
    return bool(re.search(r'database ".*" does not exist', str(exc)))


def connect(dsn: str, *, create_database: bool = False, autocommit: bool = False) -> Connection:
    """A UTF-8 connection tagged application_name=datasync; failures raise DatabaseError.

    With create_database, a missing database is created first (through the `postgres`
    maintenance database), so a fresh server needs no manual setup.
    """
    try:
        conn = _open(dsn)
    except psycopg2.Error as exc:
        if not (create_database and _missing_database(exc)):
            raise connect_error(exc, dsn) from None
        create_database_for(dsn)
        try:
            conn = _open(dsn, connect_timeout=CREATED_CONNECT_TIMEOUT_S)
        except psycopg2.Error as again:
            raise connect_error(again, dsn) from None
    conn.autocommit = autocommit
    return conn


def connect_if_exists(dsn: str) -> Connection | None:
    """A connection, or None when the server answers that the database does not exist."""
    try:
        return _open(dsn)
    except psycopg2.Error as exc:
        if _missing_database(exc):
            return None
        raise connect_error(exc, dsn) from None


def _dbname(dsn: str) -> str | None:
    """The database a DSN names (URL or keyword form)."""
    try:
        name = psycopg2.extensions.parse_dsn(dsn).get("dbname")
    except psycopg2.Error as exc:
        raise connect_error(exc, dsn) from None
    return str(name) if name else None


def create_database_for(dsn: str) -> bool:
    """CREATE DATABASE for the DSN's dbname (UTF8); False when it already existed."""
    name = _dbname(dsn)
    if not name:
        raise DatabaseError("the database URL names no database",
                            "use postgresql://USER:PASSWORD@HOST:PORT/DBNAME")
    admin = _maintenance_connection(dsn)
    try:
        admin.autocommit = True
        statement = sql.SQL("CREATE DATABASE {} ENCODING 'UTF8' TEMPLATE template0").format(
            sql.Identifier(name)
        )
        with admin.cursor() as cur:
            try:
                cur.execute(statement)
            except psycopg2.errors.DuplicateDatabase:
                return False
            except psycopg2.errors.InvalidParameterValue:
                # The cluster's locale is not UTF-8 compatible: fall back to the C locale.
                cur.execute(statement + sql.SQL(" LC_COLLATE 'C' LC_CTYPE 'C'"))
    except psycopg2.errors.DuplicateDatabase:
        return False
    except psycopg2.Error as exc:
        raise operation_error(exc, f"creating database {name!r}", dsn) from None
    finally:
        admin.close()
    return True


def drop_database(dsn: str) -> bool:
    """DROP DATABASE (ending its sessions) for the DSN's dbname; False when it did not exist."""
    name = _dbname(dsn)
    if not name or name in MAINTENANCE_DATABASES:
        raise DatabaseError(f"refusing to drop the database {name or '(none)'!r}")
    admin = _maintenance_connection(dsn)
    try:
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                return False
            cur.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    except psycopg2.Error as exc:
        raise operation_error(exc, f"dropping database {name!r}", dsn) from None
    finally:
        admin.close()
    return True


def may_create_databases(dsn: str) -> bool:
    """Whether the DSN's role may CREATE DATABASE (asked through a maintenance database)."""
    admin = _maintenance_connection(dsn)
    try:
        with admin.cursor() as cur:
            cur.execute("SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user")
            row = cur.fetchone()
        admin.rollback()
    except psycopg2.Error as exc:
        raise operation_error(exc, "looking up the role's rights", dsn) from None
    finally:
        admin.close()
    return bool(row and row[0])


def _maintenance_connection(dsn: str) -> Connection:
    last: psycopg2.Error | None = None
    for maintenance in MAINTENANCE_DATABASES:
        try:
            return _open(psycopg2.extensions.make_dsn(dsn, dbname=maintenance))
        except psycopg2.Error as exc:
            last = exc
            if not _missing_database(exc):
                break
    assert last is not None
    raise connect_error(last, dsn) from None


def server_encoding(conn: Connection) -> str:
    with conn.cursor() as cur:
        cur.execute("SHOW server_encoding")
        row = cur.fetchone()
    return str(row[0]) if row else ""
