"""Shared plumbing for the benchmarks: a database server, the simulator, timed child processes."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from datasync_cli.localpg import LocalPostgres  # noqa: E402
from datasync_cli.mockapi.process import mock_process  # noqa: E402
from datasync_cli.sink import create_database_for, drop_database  # noqa: E402

DATASYNC = [sys.executable, "-m", "datasync_cli"]
KEY = "bench-key"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB, Python {platform.python_version()}"


def server_dsn() -> str:
    """BENCH_DATABASE_URL (a server DSN), else a private cluster under .datasync/bench-pg."""
    env = os.environ.get("BENCH_DATABASE_URL")
    if env:
        return env
    return LocalPostgres(ROOT / ".datasync" / "bench-pg").ensure_started()


def database(server: str, name: str) -> str:
    """A fresh, empty database on `server`; returns its DSN."""
    base, _, rest = server.partition("?")
    dsn = base.rsplit("/", 1)[0] + f"/{name}" + (f"?{rest}" if rest else "")
    drop_database(dsn)
    create_database_for(dsn)
    return dsn


@contextmanager
def mock_api(*knobs: str) -> Iterator[str]:
    """The simulator as a child process; yields its base URL."""
    with mock_process(knobs, KEY) as mock:
        yield mock.url


@dataclass
class Timed:
    seconds: float
    max_rss_mib: float
    returncode: int
    output: str


def timed(args: list[str], env: dict[str, str] | None = None, log: str = "child") -> Timed:
    """Run a child, returning wall time and the child's own peak RSS (through
    scripts/peak_rss.py: one exec'ed straight from here would count this process's peak).

    Its output is kept in .datasync/bench-<log>.log for a look at the run afterwards."""
    out_path = ROOT / ".datasync" / f"bench-{log}.log"
    rss_path = ROOT / ".datasync" / f"bench-{log}.rss"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    launcher = [sys.executable, str(ROOT / "scripts" / "peak_rss.py"), str(rss_path)]
    with out_path.open("wb") as out:
        start = time.monotonic()
        proc = subprocess.run(
            [*launcher, *args], stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})}, check=False,
        )
        seconds = time.monotonic() - start
    peak_kib = int(rss_path.read_text().strip() or 0)
    return Timed(seconds, peak_kib / 1024, proc.returncode, out_path.read_text()[-2000:])


def ingest_args(url: str, dsn: str, *extra: str) -> list[str]:
    return [
        *DATASYNC, "ingest", "--api-url", url, "--api-key", KEY, "--database-url", dsn,
        "--log-format", "json", *extra,
    ]


def count(dsn: str, sql: str = "SELECT count(*) FROM ingested_events") -> int:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(sql)
        row = cur.fetchone()
        return int(row[0]) if row else 0


def psql() -> str:
    found = shutil.which("psql")
    if not found:
        raise SystemExit("psql is needed for the raw baseline (apt-get install postgresql-client)")
    return found

