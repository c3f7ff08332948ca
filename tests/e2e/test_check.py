"""`datasync check` against `datasync mock-api` processes: one test per state of the world.

Each state asserts the exit status ingest would have, what the report says, and that the
standard endpoint's budget is spent only when no stream token can be had.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from typing import Any

import pytest

from datasync_cli.mockapi.config import MockConfig
from datasync_cli.sink import IngestLock, available, migrate

from . import harness as h
from .conftest import StartMock

pytestmark = [pytest.mark.e2e, pytest.mark.db]

EVENTS = 12_000
RoleFactory = Callable[[str], tuple[str, str]]  # the make_role fixture of tests/conftest.py


def check(mock: h.MockProcess | None, db: str, *extra: str,
          api_key: str | None = None) -> subprocess.CompletedProcess[str]:
    args = ["check", "--database-url", db, *extra]
    if mock is not None:
        args += ["--api-url", mock.url, "--api-key", api_key or mock.api_key]
    return h.run(h.datasync(*args), timeout=60)


def report(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def standard_requests(mock: h.MockProcess) -> list[h.LoggedRequest]:
    return [r for r in h.mock_requests(mock) if r.path == h.STANDARD_PATH]


def assert_fits_80_columns(text: str) -> None:
    wide = [line for line in text.splitlines() if len(line) > 80]
    assert not wide, wide


def test_healthy_reads_one_event_from_the_feed_and_estimates(
    serve: StartMock, db_url: str
) -> None:
    mock = serve(MockConfig(events=EVENTS))
    migrate(db_url)
    result = check(mock, db_url, "--json")
    assert result.returncode == 0, result.stderr
    data = report(result)
    assert data["ok"] is True and data["problems"] == []
    assert data["database"]["schema_versions"] and not data["database"]["pending_migrations"]
    assert data["database"]["missing_privileges"] == []
    api = data["api"]
    assert (api["endpoint"], api["token"], api["source_total"]) == ("feed", "issued", EVENTS)
    assert 250 < api["token_left_s"] <= 300
    assert data["estimate"]["remaining"] == EVENTS and data["estimate"]["disk_bytes"] > 0
    assert standard_requests(mock) == [], "a token was available: no standard budget spent"
    feed = [r for r in h.mock_requests(mock) if r.path == h.FEED_PATH]
    assert len(feed) == 1

    text = check(mock, db_url)
    assert text.returncode == 0, text.stderr
    assert "ingest can start" in text.stdout
    assert f"the source holds {EVENTS:,} records" in text.stdout
    assert_fits_80_columns(text.stdout)


def test_estimate_counts_what_is_stored(serve: StartMock, db_url: str) -> None:
    mock = serve(MockConfig(events=EVENTS))
    done = h.run(h.ingest_cmd(mock, db_url))
    h.assert_ingest_ok(done, "ingest before check")
    data = report(check(mock, db_url, "--json"))
    assert data["database"]["stored"] == EVENTS
    assert data["estimate"]["remaining"] == 0
    assert 100 < data["estimate"]["bytes_per_event"] < 5000
    assert "nothing left" in check(mock, db_url).stdout


def test_wrong_key_exits_3(serve: StartMock, db_url: str) -> None:
    mock = serve(MockConfig(events=EVENTS))
    result = check(mock, db_url, api_key="not-the-key")
    assert result.returncode == 3, result.stdout + result.stderr
    assert "problem   api: the API refused the key" in result.stdout
    assert "not-the-key" not in result.stdout + result.stderr
    assert "ingest would stop with exit status 3" in result.stdout


def test_no_stream_access_reads_one_event_from_the_standard_endpoint(
    serve: StartMock, db_url: str
) -> None:
    mock = serve(MockConfig(events=EVENTS, no_stream_access=True))
    result = check(mock, db_url, "--json")
    assert result.returncode == 0, result.stderr
    data = report(result)
    assert data["api"]["endpoint"] == "standard" and data["api"]["token"] is None
    assert "DASHBOARD_REQUIRED" in data["api"]["token_problem"]
    assert data["api"]["rate_limit"] == 10
    assert any("standard endpoint" in note for note in data["notes"])
    # 12,000 events in 3 pages: one window at 10 requests a minute.
    assert "on the standard endpoint" in data["estimate"]["duration_basis"]
    assert len(standard_requests(mock)) == 1, "exactly one request of the budget"


def test_supplied_token_accepted_has_an_unknown_time_left(
    serve: StartMock, db_url: str
) -> None:
    mock = serve(MockConfig(events=EVENTS))
    token = h.dashboard_token(mock.url, mock.api_key)
    result = check(mock, db_url, "--token", token)
    assert result.returncode == 0, result.stderr
    assert "supplied and accepted; time left unknown, at most 5 min" in result.stdout
    assert token not in result.stdout + result.stderr


def test_database_down_exits_4(serve: StartMock) -> None:
    mock = serve(MockConfig(events=EVENTS))
    down = f"postgresql://postgres@127.0.0.1:{h.free_port()}/nowhere"
    result = check(mock, down)
    assert result.returncode == 4, result.stdout + result.stderr
    assert "problem   database: cannot connect to PostgreSQL" in result.stdout
    assert "the source holds" in result.stdout, "the API is still looked at"


def test_schema_missing_is_no_problem(serve: StartMock, db_url: str) -> None:
    mock = serve(MockConfig(events=EVENTS))
    result = check(mock, db_url, "--json")
    assert result.returncode == 0, result.stderr
    database = report(result)["database"]
    assert database["schema_versions"] == [] and database["pending_migrations"]
    text = " ".join(check(mock, db_url).stdout.split())
    assert f"schema not created yet ({len(available())} migrations to apply), writable" in text
    assert h.scalar(db_url, "SELECT to_regclass('ingested_events')::text") is None, "read-only"


def test_running_ingest_exits_5(serve: StartMock, db_url: str) -> None:
    mock = serve(MockConfig(events=EVENTS))
    migrate(db_url)
    with IngestLock(db_url):
        result = check(mock, db_url)
    assert result.returncode == 5, result.stdout + result.stderr
    assert "another datasync ingest is running" in result.stdout


def test_missing_privileges_are_named(
    serve: StartMock, db_url: str, make_role: RoleFactory
) -> None:
    mock = serve(MockConfig(events=EVENTS))
    migrate(db_url)
    role, as_role = make_role(db_url)
    h.query(db_url, f"GRANT USAGE ON SCHEMA public TO {role}")
    h.query(db_url, f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
    result = check(mock, h.dsn_url(as_role))
    assert result.returncode == 4, result.stdout + result.stderr
    flat = " ".join(result.stdout.split())
    assert f"the user {role} lacks INSERT, UPDATE, DELETE, TRUNCATE on table" in flat
    assert "USAGE on sequence ingest_runs_run_id_seq" in flat
    assert "role-pw" not in result.stdout + result.stderr


def test_without_api_url_exits_2(db_url: str) -> None:
    result = check(None, db_url)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "--api-url" in result.stdout
