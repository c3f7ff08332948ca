"""`datasync demo`: a complete ingest from nothing, on a local simulator and a local database.

The database is the one configured, else a server on localhost:5432, else a private cluster
started from the system's PostgreSQL binaries under `.datasync/pg`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from .display import Reporter
from .errors import DatabaseError
from .localpg import LocalPostgres
from .mockapi import MockConfig, running_mock
from .pipeline import IngestOutcome, run_ingest
from .redact import redact_url
from .settings import Settings
from .sink import connect, drop_database
from .verify import Verdict, verify

DEMO_DB = "datasync_demo"
DEMO_KEY = "demo-key"
LOCAL_SERVER = f"postgresql://postgres@127.0.0.1:5432/{DEMO_DB}"


@dataclass(frozen=True)
class DemoResult:
    outcome: IngestOutcome
    verdict: Verdict
    database_url: str


def pick_database(configured: str | None, workdir: Path, reporter: Reporter) -> str:
    """The configured DSN, else a local server, else a private cluster this tool starts."""
    if configured:
        return configured
    try:
        connect(LOCAL_SERVER, create_database=True).close()
        reporter.log("using the PostgreSQL server on 127.0.0.1:5432", database=DEMO_DB)
        return LOCAL_SERVER
    except DatabaseError:
        pass
    cluster = LocalPostgres(workdir / ".datasync" / "pg")
    reporter.log("no PostgreSQL reachable on 127.0.0.1:5432; starting a private one",
                 data_dir=str(workdir / ".datasync" / "pg"))
    cluster.ensure_started()
    return cluster.dsn(DEMO_DB)


def run_demo(
    settings: Settings,
    reporter: Reporter,
    stop: threading.Event,
    *,
    events: int,
    latency_ms: float,
    configured_db: str | None,
    workdir: Path,
) -> DemoResult:
    """Start the simulator, ingest everything into a fresh demo database, then verify."""
    dsn = pick_database(configured_db, workdir, reporter)
    if not configured_db:
        drop_database(dsn)  # a demo always starts from nothing
    config = MockConfig(
        port=0,
        events=events,
        api_key=DEMO_KEY,
        latency_ms=latency_ms,
        latency_jitter_ms=latency_ms / 4,
    )
    with running_mock(config) as mock:
        reporter.log("simulator running", url=mock.url, events=events)
        run_settings = settings.with_overrides(
            database_url=dsn, api_url=mock.url, api_key=DEMO_KEY, token=None
        )
        outcome = run_ingest(run_settings, reporter, stop)
        verdict = verify(run_settings, expected=events)
    reporter.log("demo database", url=redact_url(dsn))
    return DemoResult(outcome, verdict, dsn)
