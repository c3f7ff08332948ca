"""Real processes for end-to-end tests: `datasync mock-api` and `datasync ingest` as children."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import psycopg2
import psycopg2.errors
import psycopg2.extensions
import requests

from datasync_cli.mockapi.config import MockConfig
from datasync_cli.mockapi.process import mock_process
from datasync_cli.mockapi.truth import StreamTruth

DATASYNC = [sys.executable, "-m", "datasync_cli"]
API_KEY = "e2e-secret-key-0123"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class MockProcess:
    url: str
    api_key: str
    args: list[str]
    proc: subprocess.Popen[bytes]
    log: Path


@contextmanager
def mock_api(tmp_path: Path, *knobs: str, api_key: str = API_KEY) -> Iterator[MockProcess]:
    """Start `datasync mock-api` on a free port and wait until it answers."""
    log = tmp_path / f"mock-{time.monotonic_ns()}.log"
    started = False
    with log.open("wb") as out:
        try:
            with mock_process(knobs, api_key, out, env=_env()) as mock:
                started = True
                yield MockProcess(mock.url, api_key, mock.args, mock.proc, log)
        except RuntimeError as exc:
            if started:
                raise
            raise RuntimeError(f"{exc}: {log.read_text()}") from None


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "API_BASE_URL", "TARGET_API_KEY", "STREAM_TOKEN")
        and not k.startswith("MOCK_")
        and not k.startswith("INGEST_")
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def ingest_cmd(mock: MockProcess, dsn: str, *extra: str) -> list[str]:
    return ingest_args(mock.url, mock.api_key, dsn, *extra)


def ingest_args(api_url: str, api_key: str, dsn: str, *extra: str) -> list[str]:
    """`datasync ingest` with JSON logs against any API (a subprocess mock or an in-process one)."""
    return [
        *DATASYNC,
        "ingest",
        "--api-url",
        api_url,
        "--api-key",
        api_key,
        "--database-url",
        dsn,
        "--log-format",
        "json",
        *extra,
    ]


def run(args: list[str], timeout: float = 180, env: dict[str, str] | None = None,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a child to the end. One that hangs is made to dump every thread's stack (the
    faulthandler answers SIGABRT) and the test fails with that and the end of its output."""
    child_env = {**_env(env), "PYTHONFAULTHANDLER": "1"}
    with subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env, cwd=cwd
    ) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)
            try:
                out, err = proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
            tail = "\n".join((out or "").splitlines()[-30:])
            raise AssertionError(
                f"{' '.join(args[:4])} ... did not finish in {timeout:.0f} s.\n"
                f"--- last output ---\n{tail}\n--- stacks and errors ---\n{(err or '')[-12000:]}"
            ) from None
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def start(args: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=_env(env))


def stored_ids(dsn: str) -> list[str]:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT id FROM ingested_events")
        return [r[0] for r in cur.fetchall()]


def scalar(dsn: str, sql: str) -> object:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(sql)
        row = cur.fetchone()
        return row[0] if row else None


def describe_difference(expected: set[str], got: list[str]) -> str:
    """A failure message that names what was lost and what was duplicated."""
    got_set = set(got)
    missing = expected - got_set
    extra = got_set - expected
    dupes = len(got) - len(got_set)
    return (
        f"expected {len(expected)} ids, stored {len(got)} rows: {len(missing)} missing "
        f"(e.g. {sorted(missing)[:3]}), {len(extra)} unexpected (e.g. {sorted(extra)[:3]}), "
        f"{dupes} duplicated"
    )


# --- the crash, fault and bad-input matrix -------------------------------------------------

# MockConfig fields that are not knobs of the served stream.
_NOT_KNOBS = ("host", "port", "api_key", "log_requests")


def mock_flags(config: MockConfig) -> list[str]:
    """`datasync mock-api` flags for every knob of `config` that differs from the default, so
    the process serves exactly the stream `StreamTruth(config)` describes."""
    default = MockConfig()
    flags: list[str] = []
    for field in dataclasses.fields(MockConfig):
        value = getattr(config, field.name)
        if field.name in _NOT_KNOBS or value == getattr(default, field.name):
            continue
        flag = "--" + field.name.replace("_", "-")
        if isinstance(value, bool):
            flags += [flag] if value else []
        else:
            flags += [flag, str(value)]
    return flags


@contextmanager
def mock_for(tmp_path: Path, config: MockConfig) -> Iterator[MockProcess]:
    """`datasync mock-api` serving the stream of `config`."""
    with mock_api(tmp_path, *mock_flags(config)) as mock:
        yield mock


@lru_cache(maxsize=16)
def stream_truth(config: MockConfig) -> StreamTruth:
    return StreamTruth(config)


def expected_ids(config: MockConfig, served_only: bool = False) -> frozenset[str]:
    """Every valid id the stream of `config` holds (or serves before an early end)."""
    return frozenset(stream_truth(config).iter_valid_ids(served_only=served_only))


def query(dsn: str, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Rows of one statement on a connection of its own (closed again, so nothing leaks)."""
    conn = psycopg2.connect(dsn, application_name="datasync-tests", connect_timeout=10)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            rows = cur.fetchall() if cur.description else []
        conn.commit()
        return [tuple(r) for r in rows]
    finally:
        conn.close()


def count_rows(dsn: str, table: str = "ingested_events") -> int:
    """Rows in `table`; 0 while ingest has not created it (or its database) yet."""
    try:
        rows = query(dsn, f"SELECT count(*) FROM {table}")
    except psycopg2.errors.UndefinedTable:
        return 0
    except psycopg2.OperationalError as exc:
        if "does not exist" in str(exc):
            return 0
        raise
    return int(rows[0][0])


def wait_for_rows(
    dsn: str, at_least: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 90
) -> int:
    """Poll until `at_least` events are stored (or `proc` ended, or the timeout passed)."""
    deadline = time.monotonic() + timeout
    while True:
        n = count_rows(dsn)
        if n >= at_least or time.monotonic() > deadline:
            return n
        if proc is not None and proc.poll() is not None:
            return count_rows(dsn)
        time.sleep(0.05)


def wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


def assert_exact_set(dsn: str, expected: frozenset[str] | set[str], scenario: str) -> None:
    """The database holds each expected id exactly once, and nothing else."""
    got = [str(r[0]) for r in query(dsn, "SELECT id FROM ingested_events")]
    distinct = {str(r[0]) for r in query(dsn, "SELECT DISTINCT id FROM ingested_events")}
    assert set(got) == set(expected) and len(got) == len(distinct), (
        f"{scenario}: {describe_difference(set(expected), got)}"
    )


def _without_timestamp(record: Any) -> Any:
    if isinstance(record, dict):
        return {k: v for k, v in record.items() if k != "timestamp"}
    return record


def assert_rejected_accounted(dsn: str, config: MockConfig, scenario: str) -> None:
    """Every invalid record the stream holds is in rejected_events, with its raw text and a
    reason, and nothing else is. Records are matched on their content except the timestamp
    (its spelling depends on the endpoint that served it)."""
    truth = stream_truth(config)
    rows = query(dsn, "SELECT raw, reason, event_id FROM rejected_events")
    parsed = [(_without_timestamp(json.loads(raw)), reason, eid) for raw, reason, eid in rows]
    unaccounted = []
    for bad in truth.bad_records():
        served = _without_timestamp(truth.stream.record(bad.index, epoch_only=True))
        hits = [reason for content, reason, _ in parsed if content == served]
        if not hits or not all(str(reason).strip() for reason in hits):
            unaccounted.append(f"{bad.kind} (index {bad.index}, id {bad.event_id})")
    expected_count = len(truth.bad_records())
    assert not unaccounted and len(rows) == expected_count, (
        f"{scenario}: {len(unaccounted)} invalid record(s) not in rejected_events "
        f"(e.g. {unaccounted[:3]}); {len(rows)} rejected rows stored for {expected_count} "
        f"invalid records served; reasons: {sorted({str(r[1]) for r in rows})[:6]}"
    )


def assert_checkpoints_consistent(dsn: str, scenario: str) -> None:
    """Every checkpoint names an event that is stored, at the stored instant."""
    rows = query(
        dsn,
        "SELECT c.reader_id, c.finished, c.last_ts_ms, c.last_id, "
        "floor(extract(epoch FROM e.timestamp) * 1000)::bigint "
        "FROM cursor_state c LEFT JOIN ingested_events e ON e.id = c.last_id "
        "WHERE c.last_id IS NOT NULL",
    )
    bad = [
        f"{reader} (finished={finished}): last=({ts}, {eid}), stored at {stored}"
        for reader, finished, ts, eid, stored in rows
        if stored is None or int(stored) != int(ts)
    ]
    assert not bad, f"{scenario}: checkpoint(s) ahead of the stored rows: {bad}"


def verify_cmd(mock: MockProcess, dsn: str, *extra: str) -> list[str]:
    return [*DATASYNC, "verify", "--api-url", mock.url, "--api-key", mock.api_key,
            "--database-url", dsn, *extra]


def assert_verify(mock: MockProcess, dsn: str, scenario: str, expect: int = 0) -> str:
    """`datasync verify` exits `expect`; returns its output."""
    result = run(verify_cmd(mock, dsn), timeout=60)
    out = result.stdout + result.stderr
    assert result.returncode == expect, (
        f"{scenario}: verify exited {result.returncode}, expected {expect}: {out[-1500:]}"
    )
    return out


def assert_ingest_ok(result: subprocess.CompletedProcess[str], scenario: str) -> None:
    assert result.returncode == 0, (
        f"{scenario}: ingest exited {result.returncode}: "
        f"stderr={result.stderr[-1500:]!r} stdout={result.stdout[-1500:]!r}"
    )


def error_line(result: subprocess.CompletedProcess[str], scenario: str) -> str:
    """The one line a failed command printed on stderr (and no traceback anywhere)."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr + result.stdout, (
        f"{scenario}: traceback printed: {result.stderr[-2000:]}"
    )
    assert len(lines) == 1 and lines[0].startswith("error: "), (
        f"{scenario}: expected one 'error: ...' line on stderr, got {lines[:10]}"
    )
    return lines[0]


def log_text(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def dsn_url(dsn: str) -> str:
    """`dsn` as a postgresql:// URL (what --database-url takes), also from key=value form."""
    if dsn.startswith(("postgresql://", "postgres://")):
        return dsn
    params = psycopg2.extensions.parse_dsn(dsn)
    user = quote(params.get("user", ""), safe="")
    password = params.get("password")
    auth = f"{user}:{quote(password, safe='')}@" if password else (f"{user}@" if user else "")
    host = params.get("host", "localhost")
    port = params.get("port", "5432")
    return f"postgresql://{auth}{host}:{port}/{quote(params.get('dbname', ''), safe='')}"



# --- request logs, JSON logs and dashboard tokens (ingest and secrets tests) -----------------

FEED_PATH = "/api/v1/events/d4ta/x7k9/feed"
STANDARD_PATH = "/api/v1/events"
STREAM_ACCESS_PATH = "/internal/dashboard/stream-access"
_REQUEST_LINE = re.compile(r'"([A-Z]+) (\S+) HTTP/[0-9.]+" (\d{3})')


@contextmanager
def mock_logged(
    tmp_path: Path, config: MockConfig, api_key: str = API_KEY
) -> Iterator[MockProcess]:
    """`datasync mock-api` serving the stream of `config`, logging one line per request."""
    with mock_api(tmp_path, *mock_flags(config), "--log-requests", api_key=api_key) as mock:
        yield mock


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    status: int


def mock_requests(mock: MockProcess) -> list[LoggedRequest]:
    """Requests the mock answered so far, in order (needs --log-requests; dropped connections
    are not answered, so not listed)."""
    found = []
    for line in log_text(mock.log).splitlines():
        match = _REQUEST_LINE.search(line)
        if match:
            found.append(LoggedRequest(match[1], urlsplit(match[2]).path, int(match[3])))
    return found


def json_lines(stdout: str) -> list[dict[str, Any]]:
    """Every stdout line as a JSON object; fails naming the first line that is not one."""
    records = []
    for number, line in enumerate(stdout.splitlines(), 1):
        try:
            record = json.loads(line)
        except ValueError:
            raise AssertionError(f"stdout line {number} is not JSON: {line!r}") from None
        assert isinstance(record, dict), f"stdout line {number} is not an object: {line!r}"
        records.append(record)
    return records


def run_summary(stdout: str) -> dict[str, Any]:
    """The one `summary` record of an ingest run with --log-format json."""
    found = [r for r in json_lines(stdout) if r.get("event") == "summary"]
    assert len(found) == 1, f"expected one summary line, got {len(found)}: {stdout[-2000:]}"
    return found[0]


def datasync(*args: str) -> list[str]:
    """Any `datasync` command line, run as `python -m datasync_cli` from this environment."""
    return [*DATASYNC, *args]


def root_of(api_url: str) -> str:
    parts = urlsplit(api_url)
    return f"{parts.scheme}://{parts.netloc}"


def dashboard_token(api_url: str, api_key: str) -> str:
    """A stream token obtained as the dashboard does: browser headers and the key's cookie."""
    root = root_of(api_url)
    headers = {
        "X-API-Key": api_key,
        "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0",
        "Origin": root,
        "Referer": root + "/dashboard",
        "Cookie": f"dashboard_api_key={api_key}",
    }
    r = requests.post(root + STREAM_ACCESS_PATH, headers=headers, json={}, timeout=10)
    assert r.status_code == 200, r.text
    token: str = r.json()["streamAccess"]["token"]
    return token
