"""Commands an operator runs beside ingest: each tells the truth and fails in one clear line.

Typer's runner drives the commands in this process against a real PostgreSQL; `export-ids`
into a closed pipe runs as a real process, since only a real pipe closes.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.extensions
import pytest
from cli_env import isolated, url_of
from rich.console import Console
from typer.testing import CliRunner, Result

from datasync_cli.cli import reset_cursor as reset_cursor_module
from datasync_cli.cli.app import app
from datasync_cli.demo import DEMO_MARK, claim_database
from datasync_cli.display import render_status
from datasync_cli.errors import ConfigError, DatabaseError
from datasync_cli.sink import (
    CheckpointStore,
    IngestLock,
    available,
    create_database_for,
    database_state,
    mark_database,
    migrate,
)

pytestmark = pytest.mark.db

IDS = 20_000
RoleFactory = Callable[[str], tuple[str, str]]  # the make_role fixture of tests/conftest.py


_isolated = pytest.fixture(autouse=True)(isolated)


def invoke(*args: str, input: str | None = None, columns: int = 80) -> Result:
    return CliRunner().invoke(app, list(args), input=input, catch_exceptions=False,
                              env={"COLUMNS": str(columns)})


def one_error_line(result: Result) -> str:
    assert "Traceback" not in result.output, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


def rows(dsn: str, statement: str) -> list[tuple[Any, ...]]:
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
            return [tuple(r) for r in cur.fetchall()] if cur.description else []
    finally:
        conn.close()


@pytest.fixture
def db(migrated_url: str) -> str:
    return url_of(migrated_url)


@pytest.fixture
def stored(db: str) -> str:
    """A migrated database holding IDS events and two checkpoints, as a run leaves them."""
    rows(db, f"""INSERT INTO ingested_events (id, event_type, timestamp, data)
                 SELECT md5(i::text), 'click', now(), '{{}}'::jsonb
                 FROM generate_series(1, {IDS}) i""")
    rows(db, "INSERT INTO cursor_state (reader_id, events) VALUES ('r000', 1), ('r001', 2)")
    return db


# --- status --------------------------------------------------------------------------------


def test_status_shows_live_counters_of_a_running_run(stored: str) -> None:
    with IngestLock(stored), CheckpointStore(stored) as store:
        run_id = store.start_run(None)
        store.update_run_progress(run_id, 1_234, 5, 50_000)
        text = invoke("status", "--database-url", stored).stdout
        data = invoke("status", "--json", "--database-url", stored).stdout
    flat = " ".join(text.split())
    assert f"#{run_id} running since 20" in flat and "1,234 inserted, 5 rejected so far" in flat
    assert f"{IDS:,} of 50,000 (40.0 %)" in flat
    assert re.search(r"^lease +host \S+, pid \d+, datasync", text, re.M), text
    assert max(len(line) for line in text.splitlines()) <= 80
    assert '"inserted": 1234' in data and '"source_total": 50000' in data
    assert '"stored_percent": 40.0' in data and '"ingest_running": true' in data


def test_status_json_keeps_every_figure_and_the_reader_id_key(stored: str) -> None:
    import json

    data = json.loads(invoke("status", "--json", "--database-url", stored).stdout)
    for key in ("migrated", "schema_versions", "ingested", "rejected", "rejected_by_reason",
                "min_ts_ms", "max_ts_ms", "checkpoints", "readers_unfinished", "last_run",
                "run_completed", "ingest_running", "stored", "source_total", "database"):
        assert key in data, key
    assert [cp["reader_id"] for cp in data["checkpoints"]] == ["r000", "r001"]


def test_status_on_an_older_schema_says_to_migrate(db: str) -> None:
    newest = available()[-1].version
    rows(db, f"DELETE FROM schema_migrations WHERE version = '{newest}'")
    result = invoke("status", "--database-url", db)
    assert result.exit_code == 4, result.output
    line = one_error_line(result)
    assert f"older than this datasync (migration {newest} to apply)" in line
    assert "run datasync migrate" in line


def test_status_renders_a_lock_holder_when_the_sink_names_one() -> None:
    console = Console(record=True, width=80)
    data = {
        "database": "h:5432/db", "migrated": True, "ingested": 10, "rejected": 0, "stored": 10,
        "source_total": None, "min_ts_ms": None, "last_run": None, "ingest_running": True,
        "ingest_holder": {"pid": 4711, "host": "worker-2", "state": "host worker-2, pid 4711: "
                          "renewed 2 s ago, expires in 28 s unless renewed"},
        "rejected_by_reason": {},
        "checkpoints": [], "readers_unfinished": 0,
    }
    render_status(data, console)
    shown = " ".join(console.export_text().split())
    assert "lease host worker-2, pid 4711: renewed 2 s ago, expires in 28 s unless renewed" in shown


# --- reset-cursor --------------------------------------------------------------------------


def test_reset_cursor_refuses_while_an_ingest_runs(stored: str) -> None:
    with IngestLock(stored):
        result = invoke("reset-cursor", "--yes", "--database-url", stored)
    assert result.exit_code == 5, result.output
    assert "an ingest is running" in one_error_line(result)
    assert rows(stored, "SELECT count(*) FROM cursor_state") == [(2,)]


def test_reset_cursor_prompt_names_the_database_without_its_password(
    stored: str, migrated_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    password = psycopg2.extensions.parse_dsn(migrated_url).get("password") or "hunter2"
    with_password = url_of(psycopg2.extensions.make_dsn(migrated_url, password=password))
    monkeypatch.setattr(reset_cursor_module, "interactive", lambda: True)
    result = invoke("reset-cursor", "--database-url", with_password, input="n\n")
    assert result.exit_code == 1, result.output
    assert re.search(r"Delete all checkpoints in postgresql://\w+:\*\*\*@[^ ]+\?", result.stdout)
    assert password not in result.output
    assert rows(stored, "SELECT count(*) FROM cursor_state") == [(2,)]


# --- export-ids ----------------------------------------------------------------------------


def test_export_ids_into_a_closed_pipe_ends_quietly(stored: str) -> None:
    """`datasync export-ids - | head -3`: exit 0, nothing on stderr, not even at exit."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "datasync_cli", "export-ids", "-", "--database-url", stored],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = [proc.stdout.readline() for _ in range(3)]
    proc.stdout.close()  # what `head` does after three lines
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0, err
    assert all(len(line.strip()) == 32 for line in first)
    assert err == ""


@pytest.mark.parametrize(
    ("where", "reason"),
    [("missing/ids.txt", "No such file or directory"), (".", "Is a directory"),
     ("/dev/full", "No space left on device")],
)
def test_export_ids_to_an_unusable_path_exits_2(stored: str, where: str, reason: str) -> None:
    result = invoke("export-ids", where, "--database-url", stored)
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert f"cannot write the ids to {where}: {reason}" in line and "- for stdout" in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into any directory")
def test_export_ids_into_a_read_only_directory_exits_2(stored: str, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    result = invoke("export-ids", str(locked / "ids.txt"), "--database-url", stored)
    assert result.exit_code == 2, result.output
    assert "Permission denied" in one_error_line(result)


# --- --debug, DSN syntax, privileges -------------------------------------------------------


def test_debug_after_the_command_shows_a_traceback() -> None:
    result = invoke("status", "--debug", "--database-url", "postgresql://postgres@127.0.0.1:1/x")
    assert result.exit_code == 4
    assert "Traceback" in result.stderr and "error: cannot connect" in result.stderr


DSN_ERRORS = [
    ("postgresql://postgres:pw-secret@127.0.0.1:5432:5432/x", "port '5432:5432'", "5432"),
    ("host=127.0.0.1 port=5432:5432 dbname=x password=pw-secret", "port '5432:5432'", "port="),
    ("postgresql://postgres:pw-secret@127.0.0.1/x?sslmode=bogus", "sslmode 'bogus'", "require"),
    ("postgresql://postgres:pw-secret@[::1/x", "malformed", "postgresql://USER@HOST"),
    ("postgresql://postgres:pw-secret@127.0.0.1/x?fast=yes", "malformed", "postgresql://"),
]
DSN_COMMANDS = [
    ["migrate"], ["status"], ["reset-cursor", "--yes"], ["verify", "--expected", "1"],
    ["export-ids", "-"], ["ingest", "--api-url", "http://127.0.0.1:9/api/v1"],
    ["check", "--api-url", "http://127.0.0.1:9/api/v1"],
    ["demo", "--events", "10"],
]


@pytest.mark.parametrize("command", DSN_COMMANDS, ids=" ".join)
@pytest.mark.parametrize(("dsn", "what", "fix"), DSN_ERRORS, ids=[d[1] for d in DSN_ERRORS])
def test_dsn_syntax_errors_are_setting_errors(
    command: list[str], dsn: str, what: str, fix: str
) -> None:
    result = invoke(*command, "--database-url", dsn)
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert what in line and fix in line, line
    assert "pw-secret" not in result.output and "start PostgreSQL" not in line


def test_a_role_without_create_on_the_schema_is_told_the_grant(
    database_url: str, make_role: RoleFactory
) -> None:
    role, as_role = make_role(database_url)
    rows(database_url, "REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    result = invoke("migrate", "--database-url", url_of(as_role))
    assert result.exit_code == 4, result.output
    line = one_error_line(result)
    assert "permission denied for schema public" in line, line
    assert f"GRANT CREATE, USAGE ON SCHEMA public TO {role}" in line

    rows(database_url, "REVOKE USAGE ON SCHEMA public FROM PUBLIC")
    result = invoke("migrate", "--database-url", url_of(as_role))
    line = one_error_line(result)
    assert "no schema has been selected to create in" in line, line
    assert f"GRANT CREATE, USAGE ON SCHEMA public TO {role}" in line


def test_a_role_without_usage_on_the_run_sequence_is_told_the_grant(
    migrated_url: str, make_role: RoleFactory
) -> None:
    role, as_role = make_role(migrated_url)
    rows(migrated_url, f"GRANT USAGE ON SCHEMA public TO {role}; GRANT SELECT, INSERT, UPDATE, "
                       f"DELETE, TRUNCATE ON ALL TABLES IN SCHEMA public TO {role}")
    with pytest.raises(DatabaseError) as caught, CheckpointStore(as_role) as store:
        store.start_run(None)
    assert f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role}" in str(caught.value)


# --- verify --------------------------------------------------------------------------------


def test_verify_rejects_a_negative_expected_count(db: str) -> None:
    result = invoke("verify", "--expected", "-1", "--database-url", db)
    assert result.exit_code == 2, result.output
    assert "--expected must be 0 or more, not -1" in one_error_line(result)


def test_verify_during_a_running_ingest_says_so(stored: str) -> None:
    with IngestLock(stored):
        result = invoke("verify", "--expected", str(IDS * 2), "--database-url", stored)
        as_json = invoke("verify", "--json", "--expected", str(IDS), "--database-url", stored)
    assert result.exit_code == 1, result.output
    assert result.stdout.startswith(
        f"in progress: an ingest is running against this database: {IDS:,} of {IDS * 2:,}"
    ), result.stdout
    assert "rerun" not in result.stdout
    assert as_json.exit_code == 1 and '"ingest_running": true' in as_json.stdout


# --- messages that promise an example give one ---------------------------------------------


@pytest.mark.parametrize(
    ("flag", "bad"), [("--workers", "0"), ("--page-size", "6000"), ("--log-format", "xml")]
)
def test_exit_2_messages_give_a_valid_example(flag: str, bad: str, db: str) -> None:
    args = ["ingest", "--api-url", "http://127.0.0.1:9/api/v1", "--database-url", db]
    if flag != "--log-format":
        args += ["--log-format", "json"]
    line = one_error_line(invoke(*args, flag, bad))
    example = re.search(rf"for example {flag} (\w+)", line)
    assert example, line
    good = invoke(*args, flag, example.group(1))
    assert good.exit_code == 3, good.output  # past the settings: the API is unreachable


# --- demo ----------------------------------------------------------------------------------


def test_demo_refuses_a_database_it_did_not_create(stored: str) -> None:
    result = invoke("demo", "--events", "100", "--latency-ms", "0", "--database-url", stored)
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert "was not created by datasync demo" in line and "--database-url" in line
    assert rows(stored, "SELECT count(*) FROM ingested_events") == [(IDS,)]
    assert rows(stored, "SELECT count(*) FROM cursor_state") == [(2,)]


def test_demo_runs_in_a_new_database_and_marks_it(pg_dsn_base: str) -> None:
    target = psycopg2.extensions.make_dsn(pg_dsn_base, dbname=f"datasync_demo_{os.getpid()}")
    try:
        for _ in range(2):  # a second run reuses the database it made
            result = invoke("demo", "--events", "2000", "--latency-ms", "0", "--workers", "2",
                            "--log-format", "json", "--database-url", url_of(target))
            assert result.exit_code == 0, result.output
            assert "verify ok" in result.stdout
        assert database_state(target).owner == DEMO_MARK
    finally:
        rows(pg_dsn_base, f"DROP DATABASE IF EXISTS datasync_demo_{os.getpid()} WITH (FORCE)")


def test_demo_drops_only_its_own_database(pg_dsn_base: str) -> None:
    name = f"datasync_demo_own_{os.getpid()}"
    target = psycopg2.extensions.make_dsn(pg_dsn_base, dbname=name)
    try:
        create_database_for(target)
        migrate(target)
        rows(target, "INSERT INTO cursor_state (reader_id) VALUES ('r000')")
        with pytest.raises(ConfigError):
            claim_database(target, configured=False)  # tables, no mark: someone else's
        assert rows(target, "SELECT count(*) FROM cursor_state") == [(1,)]

        mark_database(target, DEMO_MARK)
        claim_database(target, configured=False)  # its own: dropped and made anew
        state = database_state(target)
        assert state.exists and state.owner == DEMO_MARK and state.tables == ()
    finally:
        rows(pg_dsn_base, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
