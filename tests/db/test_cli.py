"""Every command through Typer's runner: output, exit status, and every error path.

Commands run in this process against a real PostgreSQL and, where they need an API, a simulator
on a real socket. Each test runs in an empty working directory with the datasync variables
removed from the environment, so neither a developer's .env nor their shell changes a result.
"""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import psycopg2
import psycopg2.extensions
import pytest
import typer.core
import typer.main
from cli_env import forget_settings, isolated, url_of
from psycopg2 import sql
from typer.testing import CliRunner, Result

from datasync_cli import __version__
from datasync_cli.cli.app import app
from datasync_cli.mockapi import MockConfig, MockServer, StreamTruth, running_mock
from datasync_cli.sink import IngestLock

pytestmark = pytest.mark.db

KEY = "cli-test-key-0123"
EVENTS = 3_000
COMMANDS = sorted(cast(typer.core.TyperGroup, typer.main.get_command(app)).commands)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unreachable_dsn() -> str:
    return f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"


_isolated = pytest.fixture(autouse=True)(isolated)


def invoke(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env=env, input=input, catch_exceptions=False)


def one_error_line(result: Result) -> str:
    """The single `error: ...` line a failed command prints on stderr, with no traceback."""
    assert "Traceback" not in result.output, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


@pytest.fixture
def db(database_url: str) -> str:
    return url_of(database_url)


@pytest.fixture
def mock() -> Iterator[MockServer]:
    with running_mock(MockConfig(events=EVENTS, api_key=KEY)) as server:
        yield server


@pytest.fixture
def ingested(db: str, mock: MockServer) -> str:
    """A database holding a complete run of the simulator's stream."""
    result = invoke("ingest", "--api-url", mock.url, "--api-key", KEY, "--database-url", db,
                    "--log-format", "json")
    assert result.exit_code == 0, result.output
    return db


def rows(dsn: str, statement: str) -> list[tuple[Any, ...]]:
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
            return [tuple(r) for r in cur.fetchall()]
    finally:
        conn.close()


# --- global flags and help -----------------------------------------------------------------


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"datasync {__version__}"


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_of_every_command(command: str) -> None:
    result = invoke(*([command] if command else []), "--help")
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.stdout
    assert f"datasync {command}".strip() in result.stdout


def test_every_documented_command_exists() -> None:
    documented = {"migrate", "ingest", "status", "check", "reset-cursor", "verify",
                  "export-ids", "mock-api"}
    assert documented <= set(COMMANDS)


# --- migrate -------------------------------------------------------------------------------


def test_migrate_applies_the_schema_once(db: str) -> None:
    first = invoke("migrate", "--database-url", db)
    assert first.exit_code == 0, first.output
    assert "applied" in first.stdout
    again = invoke("migrate", "--database-url", db)
    assert again.exit_code == 0, again.output
    assert "up to date" in again.stdout
    tables = {r[0] for r in rows(db, "SELECT tablename FROM pg_tables WHERE schemaname = "
                                     "'public'")}
    assert {"ingested_events", "rejected_events", "cursor_state", "staging_events"} <= tables


def test_migrate_creates_a_missing_database(pg_dsn_base: str) -> None:
    name = f"datasync_cli_{os.getpid()}_{free_port()}"
    target = url_of(psycopg2.extensions.make_dsn(pg_dsn_base, dbname=name))
    try:
        result = invoke("migrate", "--database-url", target)
        assert result.exit_code == 0, result.output
        assert rows(target, "SELECT count(*) FROM ingested_events") == [(0,)]
    finally:
        admin = psycopg2.connect(pg_dsn_base)
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))
        admin.close()


# --- database failures ---------------------------------------------------------------------

DB_COMMANDS = [
    ["migrate"],
    ["status"],
    ["status", "--json"],
    ["reset-cursor", "--yes"],
    ["verify", "--expected", "10"],
    ["export-ids", "-"],
    ["ingest", "--api-url", "http://127.0.0.1:9/api/v1"],
]


@pytest.mark.parametrize("command", DB_COMMANDS, ids=" ".join)
def test_unreachable_database_is_one_line_and_exit_4(command: list[str]) -> None:
    result = invoke(*command, "--database-url", unreachable_dsn())
    assert result.exit_code == 4, result.output
    line = one_error_line(result)
    assert "PostgreSQL" in line and "--database-url" in line, line


def test_database_url_from_the_environment_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    result = invoke("status", env={"DATABASE_URL": unreachable_dsn()})
    assert result.exit_code == 4
    one_error_line(result)


# --- API failures --------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["ingest", "verify"])
def test_wrong_api_key_exits_3(command: str, db: str, mock: MockServer) -> None:
    result = invoke(command, "--api-url", mock.url, "--api-key", "not-the-key",
                    "--database-url", db)
    assert result.exit_code == 3, result.output
    line = one_error_line(result)
    assert "401" in line and "--api-key" in line, line
    assert "not-the-key" not in result.output


@pytest.mark.parametrize("command", ["ingest", "verify"])
@pytest.mark.parametrize("url", ["ftp://127.0.0.1/api/v1", "127.0.0.1:8080/api/v1", "http://"])
def test_api_url_that_is_not_http_exits_2(command: str, url: str, db: str) -> None:
    result = invoke(command, "--api-url", url, "--api-key", KEY, "--database-url", db)
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert "http" in line, line


def test_unreachable_api_host_exits_3(db: str) -> None:
    url = f"http://127.0.0.1:{free_port()}/api/v1"
    result = invoke("ingest", "--api-url", url, "--api-key", KEY, "--database-url", db,
                    "--log-format", "json")
    assert result.exit_code == 3, result.output
    line = one_error_line(result)
    assert "--api-url" in line, line


def test_ingest_without_api_url_exits_2_with_a_hint(db: str) -> None:
    result = invoke("ingest", "--api-key", KEY, "--database-url", db)
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert "--api-url" in line and "API_BASE_URL" in line, line


def test_verify_without_api_url_or_expected_exits_2(db: str) -> None:
    result = invoke("verify", "--database-url", db)
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert "--api-url" in line, line


# --- flag values ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--workers", "0"), ("--workers", "65"), ("--page-size", "9999"), ("--page-size", "0"),
     ("--log-format", "xml")],
)
def test_out_of_range_flag_exits_2_naming_the_flag(flag: str, value: str, db: str) -> None:
    result = invoke("ingest", "--api-url", "http://127.0.0.1:9/api/v1", "--database-url", db,
                    flag, value)
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert flag in line and value in line, line


@pytest.mark.parametrize(("flag", "value"), [("--workers", "many"), ("--page-size", "1.5")])
def test_flag_that_is_not_a_number_is_a_usage_error(flag: str, value: str) -> None:
    result = invoke("ingest", "--api-url", "http://127.0.0.1:9/api/v1", flag, value)
    assert result.exit_code == 2, result.output
    assert flag in result.stderr
    assert "Traceback" not in result.output


def test_unknown_flag_is_a_usage_error() -> None:
    result = invoke("status", "--fast")
    assert result.exit_code == 2
    assert "--fast" in result.stderr


# --- ingest --------------------------------------------------------------------------------


def test_ingest_prints_json_lines_ending_with_ingestion_complete(
    db: str, mock: MockServer
) -> None:
    result = invoke("ingest", "--api-url", mock.url, "--api-key", KEY, "--database-url", db,
                    "--log-format", "json", "--workers", "2", "--page-size", "500")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert records[-1]["message"] == "ingestion complete"
    summary = [r for r in records if r.get("event") == "summary"]
    assert len(summary) == 1
    assert summary[0]["status"] == "complete"
    assert summary[0]["inserted"] == EVENTS
    assert rows(db, "SELECT count(*) FROM ingested_events") == [(EVENTS,)]


def test_ingest_text_log_format_prints_a_summary(db: str, mock: MockServer) -> None:
    result = invoke("ingest", "--api-url", mock.url, "--api-key", KEY, "--database-url", db,
                    "--log-format", "text", "--no-progress")
    assert result.exit_code == 0, result.output
    assert "ingestion complete" in result.output
    assert "inserted" in result.output


def test_second_ingest_against_the_same_database_exits_5(db: str, mock: MockServer) -> None:
    assert invoke("migrate", "--database-url", db).exit_code == 0
    with IngestLock(db):
        result = invoke("ingest", "--api-url", mock.url, "--api-key", KEY, "--database-url", db,
                        "--log-format", "json")
    assert result.exit_code == 5, result.output
    assert "already running" in one_error_line(result)
    assert rows(db, "SELECT count(*) FROM ingested_events") == [(0,)]


# --- status --------------------------------------------------------------------------------


def test_status_on_an_empty_database(db: str) -> None:
    result = invoke("status", "--database-url", db)
    assert result.exit_code == 0, result.output
    assert "schema not created yet: run datasync migrate or ingest" in result.stdout
    assert "ingested" not in result.stdout

    as_json = invoke("status", "--json", "--database-url", db)
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.stdout)
    assert data["ingested"] == 0 and data["rejected"] == 0
    assert data["checkpoints"] == [] and data["last_run"] is None
    assert data["run_completed"] is False


def test_status_after_a_run(ingested: str) -> None:
    result = invoke("status", "--database-url", ingested, env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert f"{EVENTS:,} of {EVENTS:,} (100.0 %): {EVENTS:,} ingested, 0 rejected" in result.stdout
    assert re.search(r"last run  #1 completed 20\d\d-\d\d-\d\d \d\d:\d\d:\d\d UTC", result.stdout)
    assert max(len(line) for line in result.stdout.splitlines()) <= 80, result.stdout


def test_status_json_structure(ingested: str) -> None:
    result = invoke("status", "--json", "--database-url", ingested)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["migrated"] is True
    assert data["ingested"] == EVENTS and data["rejected"] == 0
    assert isinstance(data["rejected_by_reason"], dict)
    assert data["run_completed"] is True
    assert data["last_run"]["status"] == "completed"
    assert data["last_run"]["inserted"] == EVENTS
    assert data["readers_unfinished"] == 0
    assert data["checkpoints"], data
    for cp in data["checkpoints"]:
        for key in ("reader_id", "last_ts_ms", "last_id", "endpoint", "events", "updated_at",
                    "finished", "age_s"):
            assert key in cp, f"checkpoint lacks {key}: {cp}"
        assert cp["finished"] is True
    assert sum(cp["events"] for cp in data["checkpoints"]) >= EVENTS


def test_status_names_the_lease_holder_while_an_ingest_runs(ingested: str) -> None:
    assert json.loads(invoke("status", "--json", "--database-url", ingested).stdout)[
        "ingest_holder"] is None
    with IngestLock(ingested):
        text = invoke("status", "--database-url", ingested)
        as_json = invoke("status", "--json", "--database-url", ingested)
    assert text.exit_code == 0 and as_json.exit_code == 0, text.output + as_json.output
    assert f"lease host {socket.gethostname()}, pid {os.getpid()}, datasync " in (
        " ".join(text.stdout.split())
    )
    data = json.loads(as_json.stdout)
    assert data["ingest_running"] is True
    holder = data["ingest_holder"]
    assert (holder["host"], holder["pid"], holder["live"]) == (
        socket.gethostname(), os.getpid(), True
    )
    for key in ("version", "taken_at", "heartbeat_at", "expires_at", "expires_in_s", "state"):
        assert key in holder, holder


def test_status_json_last_run_records_the_source_total(ingested: str) -> None:
    result = invoke("status", "--json", "--database-url", ingested)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["last_run"]["source_total"] == EVENTS


# --- reset-cursor --------------------------------------------------------------------------


def test_reset_cursor_without_yes_off_a_terminal_is_refused(ingested: str) -> None:
    before = rows(ingested, "SELECT count(*) FROM cursor_state")
    assert before[0][0] > 0
    result = invoke("reset-cursor", "--database-url", ingested, input="y\n")
    assert result.exit_code == 1, result.output
    line = one_error_line(result)
    assert "--yes" in line, line
    assert rows(ingested, "SELECT count(*) FROM cursor_state") == before


def test_reset_cursor_yes_deletes_checkpoints_and_keeps_rows(ingested: str) -> None:
    checkpoints = rows(ingested, "SELECT count(*) FROM cursor_state")[0][0]
    result = invoke("reset-cursor", "--yes", "--database-url", ingested)
    assert result.exit_code == 0, result.output
    assert f"deleted {checkpoints} checkpoint(s)" in result.stdout
    assert rows(ingested, "SELECT count(*) FROM cursor_state") == [(0,)]
    assert rows(ingested, "SELECT count(*) FROM ingested_events") == [(EVENTS,)]


# --- verify --------------------------------------------------------------------------------


def test_verify_expected_match_and_mismatch(ingested: str) -> None:
    ok = invoke("verify", "--expected", str(EVENTS), "--database-url", ingested)
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.startswith("ok:")

    short = invoke("verify", "--expected", str(EVENTS + 7), "--database-url", ingested)
    assert short.exit_code == 1, short.output
    assert "MISMATCH" in short.stdout and "7 missing" in short.stdout

    over = invoke("verify", "--expected", str(EVENTS - 5), "--json", "--database-url", ingested)
    assert over.exit_code == 1, over.output
    verdict = json.loads(over.stdout)
    assert (verdict["ok"], verdict["missing"], verdict["extra"]) == (False, 0, 5)
    assert verdict["ingested"] == EVENTS and verdict["expected"] == EVENTS - 5


def test_verify_against_the_api_total(ingested: str, mock: MockServer) -> None:
    result = invoke("verify", "--json", "--api-url", mock.url, "--api-key", KEY,
                    "--database-url", ingested)
    assert result.exit_code == 0, result.output
    verdict = json.loads(result.stdout)
    assert verdict["ok"] is True and verdict["expected"] == EVENTS


# --- export-ids ----------------------------------------------------------------------------


def test_export_ids_to_a_file(ingested: str, tmp_path: Path) -> None:
    target = tmp_path / "ids.txt"
    result = invoke("export-ids", str(target), "--database-url", ingested)
    assert result.exit_code == 0, result.output
    assert f"wrote {EVENTS:,} ids" in result.stdout
    lines = target.read_text().splitlines()
    expected = set(StreamTruth(MockConfig(events=EVENTS, api_key=KEY)).iter_valid_ids())
    assert len(lines) == EVENTS and set(lines) == expected
    assert lines == sorted(lines)


def test_export_ids_to_stdout(ingested: str) -> None:
    result = invoke("export-ids", "-", "--database-url", ingested)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == len(set(lines)) == EVENTS
    assert set(lines) == {r[0] for r in rows(ingested, "SELECT id FROM ingested_events")}


# --- settings precedence -------------------------------------------------------------------


def _dotenv(**values: str) -> None:
    Path(".env").write_text("".join(f"{k}={v}\n" for k, v in values.items()))




@pytest.mark.parametrize(
    ("dotenv", "env", "flag", "wins"),
    [
        ("9001", None, None, "9001"),
        ("9001", "9002", None, "9002"),
        ("9001", "9002", "9003", "9003"),
        (None, "9002", "9003", "9003"),
    ],
)
def test_precedence_flag_over_environment_over_dotenv(
    dotenv: str | None, env: str | None, flag: str | None, wins: str
) -> None:
    """INGEST_PAGE_SIZE is checked before anything is contacted: the error names the value
    that won."""
    if dotenv:
        _dotenv(INGEST_PAGE_SIZE=dotenv)
    args = ["ingest", "--api-url", "http://127.0.0.1:9/api/v1"]
    if flag:
        args += ["--page-size", flag]
    result = invoke(*args, env={"INGEST_PAGE_SIZE": env} if env else None)
    assert result.exit_code == 2, result.output
    assert f"not {wins}" in one_error_line(result)


def test_precedence_of_the_database_url(db: str, migrated_url: str) -> None:
    """Three places name three databases; status shows which one was read."""
    migrated, fresh, down = url_of(migrated_url), db, unreachable_dsn()

    def status(env: dict[str, str] | None, *flag: str) -> dict[str, Any]:
        result = invoke("status", "--json", *flag, env=env)
        forget_settings()  # what the app loaded from .env must not leak into the next case
        assert result.exit_code == 0, result.output
        return cast(dict[str, Any], json.loads(result.stdout))

    _dotenv(DATABASE_URL=migrated)
    assert status(None)["migrated"] is True  # .env alone
    assert status({"DATABASE_URL": fresh})["migrated"] is False  # environment over .env
    _dotenv(DATABASE_URL=down)
    assert status({"DATABASE_URL": migrated})["migrated"] is True
    assert status({"DATABASE_URL": down}, "--database-url", fresh)["migrated"] is False
    assert status({"DATABASE_URL": down}, "--database-url", migrated)["migrated"] is True
