"""IngestLock: one ingest per database, released with its session."""

from __future__ import annotations

from typing import Any

import pytest

from datasync_cli.errors import LockHeldError
from datasync_cli.sink import IngestLock

pytestmark = pytest.mark.db

Query = Any


def test_second_lock_is_refused_with_the_holder(migrated_url: str) -> None:
    with IngestLock(migrated_url) as held:
        assert held.held()
        with pytest.raises(LockHeldError) as caught:
            IngestLock(migrated_url).acquire()
    error = caught.value
    assert error.message.startswith(
        "another datasync ingest is already running against this database"
    )
    assert "pid " in error.message and "application datasync" in error.message
    assert error.hint == "wait for it to finish or stop it; two ingests at once are refused"
    assert error.exit_code == 5


def test_released_on_exit_and_reusable(migrated_url: str) -> None:
    with IngestLock(migrated_url):
        pass
    with IngestLock(migrated_url) as again:
        assert again.held()
    assert not again.held()


def test_other_databases_are_independent(migrated_url: str, database_url: str) -> None:
    with IngestLock(migrated_url), IngestLock(database_url) as other:
        assert other.held()


def test_a_dead_session_releases_the_lock(migrated_url: str, query: Query) -> None:
    first = IngestLock(migrated_url)
    first.acquire()
    query(
        "SELECT pg_terminate_backend(l.pid) FROM pg_locks l "
        "WHERE l.locktype = 'advisory' AND l.pid <> pg_backend_pid()"
    )
    assert not first.held()
    with IngestLock(migrated_url) as second:
        assert second.held()
    first.release()  # harmless after the session died


def test_lock_is_taken_by_this_process(migrated_url: str, query: Query) -> None:
    with IngestLock(migrated_url):
        rows = query(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
            "WHERE l.locktype = 'advisory' AND l.granted"
        )
    assert rows == [("datasync",)]
