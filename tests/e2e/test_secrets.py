"""No secret (API key, stream token, DSN password) in any output of any command.

Every command runs as a process with all three secrets set, through its success and failure
paths, by flag and by environment; stdout (the JSON logs included) and stderr are searched for
each secret, and each run must have taken the path it is meant to (its exit status).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
import psycopg2.extensions
import pytest

from datasync_cli.mockapi.config import MockConfig

from . import harness as h
from .conftest import StartMock

pytestmark = pytest.mark.e2e

DB_PASSWORD = "s3cr3t-db-pw"
WRONG_KEY = "wrong-secret-key-4567"
BOGUS_TOKEN = "bogus-stream-token-89ab"


@dataclass
class Secrets:
    """The secret values in play and the DSN that carries the password."""

    api_key: str
    token: str
    db_password: str
    dsn: str  # a postgresql:// URL holding db_password

    def named(self, **more: str) -> dict[str, str]:
        return {"API key": self.api_key, "stream token": self.token,
                "DSN password": self.db_password, **more}


@dataclass
class Case:
    label: str
    args: list[str]
    status: int
    env: dict[str, str] = field(default_factory=dict)


def _with_password(dsn: str, password: str) -> str:
    params = psycopg2.extensions.parse_dsn(dsn)
    params["password"] = password
    return h.dsn_url(psycopg2.extensions.make_dsn(**params))


@pytest.fixture
def secret_dsn(database_url: str) -> tuple[str, str]:
    """(URL with a password, that password). A server that checks passwords is given its own
    (a real secret); one that trusts the connection is given a made-up one, which it ignores."""
    own = psycopg2.extensions.parse_dsn(database_url).get("password")
    password = own or DB_PASSWORD
    url = _with_password(database_url, password)
    try:
        psycopg2.connect(url, connect_timeout=10).close()
    except psycopg2.OperationalError as exc:
        pytest.skip(f"the test server refuses a password it does not know: {exc}")
    return url, password


def _unreachable(password: str) -> str:
    return f"postgresql://postgres:{password}@127.0.0.1:{h.free_port()}/nowhere"


def _run_all(cases: list[Case], secrets: dict[str, str], cwd: Path) -> list[str]:
    """Run every case; return one line per problem (a leak or a wrong exit status)."""
    problems: list[str] = []
    for case in cases:
        result: subprocess.CompletedProcess[str] = h.run(
            case.args, timeout=120, env=case.env, cwd=cwd
        )
        problems += _leaks(case.label, result.stdout + result.stderr, secrets)
        if result.returncode != case.status:
            problems.append(
                f"{case.label}: exit {result.returncode}, expected {case.status}: "
                f"{(result.stderr or result.stdout)[-600:]!r}"
            )
    return problems


def _leaks(label: str, text: str, secrets: dict[str, str]) -> list[str]:
    return [f"{label}: the {name} appears in the output" for name, value in secrets.items()
            if value in text]


@pytest.fixture
def secrets_and_mock(
    serve: StartMock, secret_dsn: tuple[str, str]
) -> tuple[Secrets, h.MockProcess]:
    mock = serve(MockConfig(events=6_000))
    token = h.dashboard_token(mock.url, mock.api_key)
    dsn, password = secret_dsn
    return Secrets(mock.api_key, token, password, dsn), mock


def test_success_paths_print_no_secret(
    secrets_and_mock: tuple[Secrets, h.MockProcess], tmp_path: Path
) -> None:
    s, mock = secrets_and_mock
    api = ["--api-url", mock.url, "--api-key", s.api_key]
    db = ["--database-url", s.dsn]
    by_env = {"API_BASE_URL": mock.url, "TARGET_API_KEY": s.api_key, "STREAM_TOKEN": s.token,
              "DATABASE_URL": s.dsn}
    ids = tmp_path / "ids.txt"
    cases = [
        Case("migrate", h.datasync("migrate", *db), 0),
        Case("ingest json", h.datasync("ingest", *api, *db, "--token", s.token,
                                       "--log-format", "json"), 0),
        Case("ingest text", h.datasync("ingest", *api, *db, "--token", s.token,
                                       "--log-format", "text", "--no-progress"), 0),
        Case("ingest by environment", h.datasync("ingest", "--log-format", "json"), 0, by_env),
        Case("ingest with a token that is refused", h.datasync(
            "ingest", *api, *db, "--token", BOGUS_TOKEN, "--log-format", "json"), 0),
        Case("status", h.datasync("status", *db), 0),
        Case("status --json", h.datasync("status", "--json", *db), 0),
        Case("status by environment", h.datasync("status"), 0, by_env),
        Case("verify", h.datasync("verify", *api, *db), 0),
        Case("verify --json", h.datasync("verify", "--json", *api, *db), 0),
        Case("verify by environment", h.datasync("verify"), 0, by_env),
        Case("verify --expected", h.datasync("verify", "--expected", "6000", *db), 0),
        Case("export-ids to a file", h.datasync("export-ids", str(ids), *db), 0),
        Case("export-ids to stdout", h.datasync("export-ids", "-", *db), 0),
        Case("reset-cursor refused", h.datasync("reset-cursor", *db), 1),
        Case("reset-cursor --yes", h.datasync("reset-cursor", "--yes", *db), 0),
        Case("ingest --help", h.datasync("ingest", "--help"), 0, by_env),
        Case("verify --help", h.datasync("verify", "--help"), 0, by_env),
        Case("status --help", h.datasync("status", "--help"), 0, by_env),
    ]
    secrets = s.named(refused_token=BOGUS_TOKEN)
    problems = _run_all(cases, secrets, tmp_path)
    problems += _leaks("export-ids file", ids.read_text(), secrets)
    problems += _leaks("mock-api", h.log_text(mock.log), secrets)
    assert not problems, "\n".join(problems)


def test_failure_paths_print_no_secret(
    secrets_and_mock: tuple[Secrets, h.MockProcess], tmp_path: Path
) -> None:
    s, mock = secrets_and_mock
    api = ["--api-url", mock.url, "--api-key", s.api_key]
    wrong = ["--api-url", mock.url, "--api-key", WRONG_KEY]
    db = ["--database-url", s.dsn]
    down = ["--database-url", _unreachable(s.db_password)]
    unknown_host = ["--database-url", f"postgresql://postgres:{s.db_password}@nohost.invalid/x"]
    nowhere = f"http://127.0.0.1:{h.free_port()}/api/v1"
    token = ["--token", s.token]
    cases = [
        Case("ingest, wrong key", h.datasync("ingest", *wrong, *db, *token), 3),
        Case("ingest, wrong key, --debug",
             h.datasync("--debug", "ingest", *wrong, *db, *token, "--log-format", "json"), 3),
        Case("verify, wrong key", h.datasync("verify", *wrong, *db), 3),
        Case("verify, wrong key by environment", h.datasync("verify"), 3,
             {"API_BASE_URL": mock.url, "TARGET_API_KEY": WRONG_KEY, "DATABASE_URL": s.dsn}),
        Case("ingest, API unreachable",
             h.datasync("ingest", "--api-url", nowhere, "--api-key", s.api_key, *db, *token), 3),
        Case("ingest, not an http URL",
             h.datasync("ingest", "--api-url", "ftp://127.0.0.1/api/v1", "--api-key", s.api_key,
                        *db, *token), 2),
        Case("migrate, database down", h.datasync("migrate", *down), 4),
        Case("migrate, database down, --debug", h.datasync("--debug", "migrate", *down), 4),
        Case("migrate, unknown database host", h.datasync("migrate", *unknown_host), 4),
        Case("ingest, database down", h.datasync("ingest", *api, *down, *token), 4),
        Case("ingest, database down by environment", h.datasync("ingest"), 4, {
            "API_BASE_URL": mock.url, "TARGET_API_KEY": s.api_key, "STREAM_TOKEN": s.token,
            "DATABASE_URL": _unreachable(s.db_password)}),
        Case("status, database down", h.datasync("status", *down), 4),
        Case("status --json, database down", h.datasync("status", "--json", *down), 4),
        Case("verify, database down", h.datasync("verify", *api, *down), 4),
        Case("reset-cursor --yes, database down", h.datasync("reset-cursor", "--yes", *down), 4),
        Case("export-ids, database down",
             h.datasync("export-ids", str(tmp_path / "ids.txt"), *down), 4),
        Case("ingest, --workers 0", h.datasync("ingest", *api, *db, *token, "--workers", "0"), 2),
        Case("ingest, --page-size 9999",
             h.datasync("ingest", *api, *db, *token, "--page-size", "9999"), 2),
        Case("ingest, --workers not a number",
             h.datasync("ingest", *api, *db, *token, "--workers", "many"), 2),
        Case("ingest, --log-format xml",
             h.datasync("ingest", *api, *db, *token, "--log-format", "xml"), 2),
        Case("ingest, unknown flag", h.datasync("ingest", *api, *db, *token, "--fast"), 2),
        Case("verify, no API URL", h.datasync("verify", "--api-key", s.api_key, *db), 2),
    ]
    secrets = s.named(wrong_key=WRONG_KEY)
    problems = _run_all(cases, secrets, tmp_path)
    problems += _leaks("mock-api", h.log_text(mock.log), secrets)
    assert not problems, "\n".join(problems)


def test_password_with_url_escapes_is_hidden_in_both_spellings(
    database_url: str, tmp_path: Path
) -> None:
    """A password holding characters a URL must escape: neither the raw nor the escaped form
    may show (the server is down, so it is never checked)."""
    password = "p@ss:w/rd%21 s3cr3t"
    escaped = "p%40ss%3Aw%2Frd%2521%20s3cr3t"
    dsn = f"postgresql://postgres:{escaped}@127.0.0.1:{h.free_port()}/nowhere"
    secrets = {"DSN password": password, "escaped DSN password": escaped}
    cases = [
        Case("migrate", h.datasync("migrate", "--database-url", dsn), 4),
        Case("status", h.datasync("status", "--database-url", dsn), 4),
        Case("status by environment", h.datasync("status"), 4, {"DATABASE_URL": dsn}),
        Case("ingest", h.datasync("ingest", "--api-url", "http://127.0.0.1:9/api/v1",
                                  "--database-url", dsn), 4),
        Case("ingest, bad flag", h.datasync("ingest", "--api-url", "http://127.0.0.1:9/api/v1",
                                            "--database-url", dsn, "--workers", "0"), 2),
    ]
    problems = _run_all(cases, secrets, tmp_path)
    assert not problems, "\n".join(problems)


def test_keyword_dsn_password_is_not_echoed_when_the_server_is_unreachable(
    tmp_path: Path,
) -> None:
    dsn = f"host=127.0.0.1 port={h.free_port()} user=postgres password={DB_PASSWORD} dbname=x"
    secrets = {"DSN password": DB_PASSWORD}
    cases = [
        Case("status, keyword DSN", h.datasync("status", "--database-url", dsn), 4),
        Case("ingest, keyword DSN by environment", h.datasync("ingest"), 4,
             {"DATABASE_URL": dsn, "API_BASE_URL": "http://127.0.0.1:9/api/v1"}),
    ]
    problems = _run_all(cases, secrets, tmp_path)
    assert not problems, "\n".join(problems)
