"""The privilege list of docs/operations.md ("Database privileges") is enough, and needed.

The GRANT statements are read from the runbook and run as written (for a role of the test's
own), then the commands an operator uses run as that role: nothing more is needed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg2
import psycopg2.extensions
import pytest
from typer.testing import CliRunner, Result

from datasync_cli.cli.app import app
from datasync_cli.mockapi import MockConfig, MockServer, running_mock
from datasync_cli.sink import migrate

pytestmark = pytest.mark.db

RUNBOOK = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
KEY = "privileges-test-key"
EVENTS = 3_000
RoleFactory = Callable[[str], tuple[str, str]]  # the make_role fixture of tests/conftest.py


def documented_grants() -> tuple[list[str], list[str]]:
    """The two GRANT blocks: for a role that owns its tables, and for one that only ingests."""
    section = RUNBOOK.read_text(encoding="utf-8").split("## Database privileges", 1)[1]
    blocks = re.findall(r"```sql\n(.*?)```", section.split("\n## ", 1)[0], re.S)
    assert len(blocks) == 2, blocks
    owner, user = ([line for line in block.splitlines() if line.strip()] for block in blocks)
    return owner, user


def url_of(dsn: str) -> str:
    p = psycopg2.extensions.parse_dsn(dsn)
    auth = f"{p['user']}:{p['password']}@" if p.get("password") else f"{p['user']}@"
    return f"postgresql://{auth}{p.get('host', 'localhost')}:{p.get('port', '5432')}/{p['dbname']}"


def run_as_admin(dsn: str, statements: list[str], role: str) -> None:
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement.replace("TO datasync;", f"TO {role};"))
    finally:
        conn.close()


@pytest.fixture(autouse=True)
def _no_settings_from_outside(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)
    for name in ("DATABASE_URL", "API_BASE_URL", "TARGET_API_KEY", "STREAM_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    yield


@pytest.fixture
def mock() -> Iterator[MockServer]:
    with running_mock(MockConfig(events=EVENTS, api_key=KEY)) as server:
        yield server


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def run_everything(dsn: str, mock: MockServer) -> None:
    api = ("--api-url", mock.url, "--api-key", KEY)
    for command in (
        ["migrate"],
        ["check", *api],
        ["ingest", *api, "--log-format", "json"],
        ["status"],
        ["status", "--json"],
        ["verify", *api],
        ["export-ids", "-"],
        ["reset-cursor", "--yes"],
    ):
        result = invoke(*command, "--database-url", url_of(dsn))
        assert result.exit_code == 0, f"{command[0]}: {result.output[-2000:]}"


def test_a_role_that_owns_its_tables_needs_only_the_schema_grant(
    database_url: str, make_role: RoleFactory, mock: MockServer
) -> None:
    owner_grants, _ = documented_grants()
    role, as_role = make_role(database_url)
    # As on PostgreSQL 15 and later, whatever this server's version.
    run_as_admin(database_url, ["REVOKE CREATE ON SCHEMA public FROM PUBLIC"], role)
    run_as_admin(database_url, owner_grants, role)
    run_everything(as_role, mock)


def test_a_role_that_only_ingests_needs_the_listed_grants(
    database_url: str, make_role: RoleFactory, mock: MockServer
) -> None:
    _, user_grants = documented_grants()
    role, as_role = make_role(database_url)
    run_as_admin(database_url, ["REVOKE CREATE ON SCHEMA public FROM PUBLIC"], role)
    migrate(database_url)
    run_as_admin(database_url, user_grants, role)
    run_everything(as_role, mock)


def test_without_the_sequence_grant_ingest_cannot_record_its_run(
    database_url: str, make_role: RoleFactory, mock: MockServer
) -> None:
    _, user_grants = documented_grants()
    role, as_role = make_role(database_url)
    migrate(database_url)
    run_as_admin(database_url, [g for g in user_grants if "SEQUENCES" not in g], role)
    check = invoke("check", "--api-url", mock.url, "--api-key", KEY,
                   "--database-url", url_of(as_role))
    assert check.exit_code == 4
    assert "USAGE on sequence ingest_runs_run_id_seq" in " ".join(check.stdout.split())
    result = invoke("ingest", "--api-url", mock.url, "--api-key", KEY, "--log-format", "json",
                    "--database-url", url_of(as_role))
    assert result.exit_code == 4, result.output
    assert "GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO" in result.stderr
