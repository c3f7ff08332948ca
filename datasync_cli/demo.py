"""`datasync demo`: a complete ingest from nothing, on a local simulator and a local database.

The database is the one configured, else a server on 127.0.0.1:5432, else a private cluster
started from the system's PostgreSQL binaries under `.datasync/pg`. The demo writes only into a
database it created itself (it leaves a mark in it) or one that holds no tables, and it drops
only its own: never a database someone else may be using.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from .display import Reporter
from .errors import ConfigError, DatabaseError
from .localpg import LocalPostgres
from .mockapi import MockConfig, running_mock
from .pipeline import IngestOutcome, run_ingest
from .redact import redact_url
from .settings import Settings
from .sink import (
    DatabaseState,
    create_database_for,
    database_state,
    describe,
    drop_database,
    mark_database,
)
from .verify import Verdict, verify

DEMO_DB = "datasync_demo"
DEMO_KEY = "demo-key"
DEMO_MARK = "datasync demo"
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
        database_state(LOCAL_SERVER)  # reachable? (creates nothing)
        reporter.log("using the PostgreSQL server on 127.0.0.1:5432", database=DEMO_DB)
        return LOCAL_SERVER
    except DatabaseError:
        pass
    cluster = LocalPostgres(workdir / ".datasync" / "pg")
    reporter.log("no PostgreSQL reachable on 127.0.0.1:5432; starting a private one",
                 data_dir=str(workdir / ".datasync" / "pg"))
    cluster.ensure_started()
    return cluster.dsn(DEMO_DB)


def claim_database(dsn: str, *, configured: bool) -> None:
    """Make the DSN's database the demo's, or refuse with ConfigError.

    Its own database (marked) is dropped and created again, so each demo starts from nothing,
    unless the operator named it (then it is reused as it is). A new or empty database is
    created or taken and marked. Anything else holds data the demo did not create: refused.
    """
    state = database_state(dsn)
    if state.exists and state.owner != DEMO_MARK and state.tables:
        raise _foreign(dsn, state, configured)
    if state.exists and state.owner == DEMO_MARK and not configured:
        drop_database(dsn)
        state = DatabaseState(exists=False)
    if not state.exists:
        create_database_for(dsn)
    if state.owner != DEMO_MARK:
        mark_database(dsn, DEMO_MARK)


def _foreign(dsn: str, state: DatabaseState, configured: bool) -> ConfigError:
    shown = ", ".join(state.tables[:3]) + (", ..." if len(state.tables) > 3 else "")
    message = (f"database {describe(dsn)} was not created by datasync demo and holds tables "
               f"({shown}); the demo will not write into it or drop it")
    if configured:
        hint = ("pass --database-url with a new or empty database, e.g. one named "
                f"{DEMO_DB}, or unset DATABASE_URL to let the demo use a database of its own")
    else:
        hint = (f"drop it yourself if it is not needed (DROP DATABASE {DEMO_DB}), or pass "
                "--database-url with a new or empty database")
    return ConfigError(message, hint)


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
    claim_database(dsn, configured=bool(configured_db))
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
