"""LockWatch: the run's heartbeat renews the lease beside the main loop and stops a run that
lost it."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from datasync_cli.display import NullReporter
from datasync_cli.errors import DatabaseError, LockHeldError
from datasync_cli.pipeline.control import RunControl
from datasync_cli.pipeline.lockwatch import LockWatch
from datasync_cli.sink import LEASE_LAPSED, LEASE_TTL_S, IngestLock

pytestmark = pytest.mark.db

Query = Any


def beat(watch: LockWatch) -> None:
    """One renewal, waited for."""
    watch.check()
    beat_thread = watch._beat
    assert beat_thread is not None
    beat_thread.join(10)


def watch_for(lock: IngestLock) -> tuple[LockWatch, RunControl, NullReporter]:
    control = RunControl(threading.Event(), lambda: None)
    reporter = NullReporter()
    return LockWatch(lock, control, reporter, heartbeat_s=0.0), control, reporter


def test_check_never_waits_and_renews_in_the_background(migrated_url: str, query: Query) -> None:
    with IngestLock(migrated_url) as lock:
        watch, control, reporter = watch_for(lock)
        (before,) = query("SELECT heartbeat_at FROM ingest_lease")[0]
        time.sleep(0.05)
        beat(watch)
        (after,) = query("SELECT heartbeat_at FROM ingest_lease")[0]
    assert after > before
    assert control.failure is None and reporter.lines == []


def test_a_lost_lease_stops_the_run(migrated_url: str, query: Query) -> None:
    lock = IngestLock(migrated_url)
    lock.acquire()
    watch, control, _ = watch_for(lock)
    query("UPDATE ingest_lease SET expires_at = now() - interval '1 second'")
    with IngestLock(migrated_url):
        beat(watch)
    assert isinstance(control.failure, LockHeldError) and control.stopping
    assert "lost its lease" in str(control.failure)
    lock.release()


def test_an_expired_lease_nobody_took_is_renewed_with_a_warning(
    migrated_url: str, query: Query
) -> None:
    with IngestLock(migrated_url) as lock:
        watch, control, reporter = watch_for(lock)
        query("UPDATE ingest_lease SET expires_at = now() - interval '1 second'")
        beat(watch)
        assert lock.held()
    assert control.failure is None
    assert reporter.lines == [("warning", LEASE_LAPSED, {})]


class Unreachable:
    """A lock whose database is away."""

    def reassert(self) -> bool:
        raise DatabaseError("cannot connect to PostgreSQL at db:5432/x: connection refused")


def test_an_unreachable_database_is_retried_and_the_expiry_announced_once() -> None:
    watch, control, reporter = watch_for(Unreachable())  # type: ignore[arg-type]
    beat(watch)
    assert control.failure is None and reporter.lines == []
    watch._renewed_at -= LEASE_TTL_S / 2  # as if renewals had failed for half the lease
    beat(watch)
    beat(watch)
    assert control.failure is None
    assert len(reporter.lines) == 1
    level, message, _ = reporter.lines[0]
    assert level == "warning" and message.startswith("could not renew the ingest lease for 15 s")
    assert "another ingest may take it over" in message
