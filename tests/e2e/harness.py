"""Real processes for end-to-end tests: `datasync mock-api` and `datasync ingest` as subprocesses."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import requests

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
    port = free_port()
    args = [*DATASYNC, "mock-api", "--port", str(port), "--api-key", api_key, *knobs]
    log = tmp_path / f"mock-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=_env())
    url = f"http://127.0.0.1:{port}/api/v1"
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(url, headers={"X-API-Key": api_key}, timeout=1)
            break
        except requests.RequestException:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"mock-api did not start: {log.read_text()}") from None
            time.sleep(0.1)
    try:
        yield MockProcess(url, api_key, args, proc, log)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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
    return [
        *DATASYNC,
        "ingest",
        "--api-url",
        mock.url,
        "--api-key",
        mock.api_key,
        "--database-url",
        dsn,
        "--log-format",
        "json",
        *extra,
    ]


def run(args: list[str], timeout: float = 180, env: dict[str, str] | None = None,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, capture_output=True, text=True, timeout=timeout, env=_env(env), cwd=cwd
    )


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
