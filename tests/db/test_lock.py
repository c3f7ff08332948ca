"""IngestLock: one ingest per database, held as a lease row timed by the server's clock."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import psycopg2
import pytest

from datasync_cli import __version__
from datasync_cli.errors import LockHeldError
from datasync_cli.models import Batch, Checkpoint, Position
from datasync_cli.sink import (
    CheckpointStore,
    CopyWriter,
    IngestLock,
    ingest_running,
    lease_holder,
    migrate,
    store_stats,
)
from datasync_cli.sink import lock as lock_module
from datasync_cli.sink.copy_format import make_batch
from datasync_cli.sink.holder import this_process
from datasync_cli.transform import transform_page

pytestmark = pytest.mark.db

Query = Any

EXPIRE_NOW = "UPDATE ingest_lease SET expires_at = now() - interval '1 second'"


def batch_of(n: int, events_before: int = 0) -> Batch:
    """A one-event page of reader r0."""
    at = 1769541612369 - n
    events, rejected = transform_page([{"id": f"ev-{n}", "type": "click", "timestamp": at}])
    checkpoint = Checkpoint(range_id="r0", position=Position(at, f"ev-{n}"),
                            events=events_before + 1, endpoint="feed")
    return make_batch(events, rejected, checkpoint, fetched=1)


def lease_rows(query: Query) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = query(
        "SELECT host, pid, version, expires_at > now() FROM ingest_lease"
    )
    return rows


def test_second_lease_is_refused_naming_the_holder(migrated_url: str, query: Query) -> None:
    with IngestLock(migrated_url) as held:
        assert held.held()
        assert lease_rows(query) == [(this_process().host, os.getpid(), __version__, True)]
        with pytest.raises(LockHeldError) as caught:
            IngestLock(migrated_url).acquire()
    error = caught.value
    assert error.message.startswith(
        "another datasync ingest is already running against this database ("
        f"host {this_process().host}, pid {os.getpid()}, datasync {__version__}, since 20"
    )
    assert error.hint == "wait for it to finish or stop it; two ingests at once are refused"
    assert error.exit_code == 5


def test_released_on_exit_and_reusable(migrated_url: str, query: Query) -> None:
    with IngestLock(migrated_url):
        pass
    assert lease_rows(query) == []
    with IngestLock(migrated_url) as again:
        assert again.held()
    assert not again.held()
    assert lease_rows(query) == []


def test_released_when_the_run_fails(migrated_url: str, query: Query) -> None:
    with pytest.raises(RuntimeError), IngestLock(migrated_url):
        raise RuntimeError("the run failed")
    assert lease_rows(query) == []
    assert not ingest_running(migrated_url)


def test_other_databases_are_independent(migrated_url: str, database_url: str) -> None:
    migrate(database_url)
    with IngestLock(migrated_url), IngestLock(database_url) as other:
        assert other.held()


def test_heartbeat_moves_the_expiry_by_the_server_clock(migrated_url: str, query: Query) -> None:
    with IngestLock(migrated_url) as lock:
        (before,) = query("SELECT expires_at, expires_at - heartbeat_at FROM ingest_lease")
        time.sleep(0.05)
        assert lock.reassert() is False
        (after,) = query("SELECT expires_at, expires_at - heartbeat_at, now() - heartbeat_at "
                         "FROM ingest_lease")
    assert after[0] > before[0]
    assert before[1].total_seconds() == after[1].total_seconds() == lock_module.LEASE_TTL_S
    assert after[2].total_seconds() < 5


def test_expired_lease_is_taken_over_and_the_old_holder_stops(
    migrated_url: str, query: Query
) -> None:
    first = IngestLock(migrated_url)
    first.acquire()
    second = IngestLock(migrated_url)
    with pytest.raises(LockHeldError):
        second.acquire()
    query(EXPIRE_NOW)  # the server's clock passed the expiry without a renewal
    second.acquire()
    assert second.held() and not first.held()
    with pytest.raises(LockHeldError) as caught:
        first.reassert()
    assert caught.value.message.startswith(
        "this ingest lost its lease: another datasync ingest now holds it (host "
    )
    assert caught.value.exit_code == 5
    first.release()  # must not delete the new holder's row
    assert second.held()
    second.release()


def test_expiry_follows_the_server_clock(migrated_url: str) -> None:
    first = IngestLock(migrated_url, ttl_s=1.0)
    first.acquire()
    with pytest.raises(LockHeldError):
        IngestLock(migrated_url).acquire()
    time.sleep(1.3)
    assert not ingest_running(migrated_url)
    with IngestLock(migrated_url) as second:
        assert second.held()
    first.release()


def test_dead_holder_on_this_host_is_taken_over_at_once(
    migrated_url: str, query: Query, caplog: pytest.LogCaptureFixture
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\n"
         "from datasync_cli.sink import IngestLock\n"
         "IngestLock(sys.argv[1]).acquire()\n"
         "print('held', flush=True)\n"
         "time.sleep(120)\n",
         migrated_url],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert ingest_running(migrated_url)
        with pytest.raises(LockHeldError) as caught:
            IngestLock(migrated_url).acquire()
        assert f"pid {holder.pid}," in caught.value.message
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
    finally:
        holder.kill()
        holder.wait()
    assert lease_rows(query)[0][1:] == (holder.pid, __version__, True)  # not expired yet
    assert not ingest_running(migrated_url)
    caplog.set_level(logging.WARNING, logger="datasync_cli")
    started = time.monotonic()
    with IngestLock(migrated_url) as lock:
        assert lock.held()
    assert time.monotonic() - started < 2
    assert any(
        "took over the ingest lease from a dead holder" in r.getMessage()
        and f"pid {holder.pid}," in r.getMessage()
        for r in caplog.records
    ), caplog.text


def test_holder_with_this_pid_but_another_start_is_taken_over(
    migrated_url: str, query: Query
) -> None:
    me = this_process()
    query(
        "INSERT INTO ingest_lease (holder_id, host, pid, process_start, version, expires_at) "
        "VALUES ('before-restart', %s, %s, %s, 'old', now() + interval '1 hour')",
        (me.host, me.pid, f"{me.machine()} 1"),
    )
    with IngestLock(migrated_url) as lock:
        assert lock.held()


@pytest.mark.parametrize("host", ["elsewhere", "here"], ids=["another host", "no /proc"])
def test_holder_that_may_be_alive_is_taken_over_only_after_expiry(
    migrated_url: str, query: Query, host: str
) -> None:
    me = this_process()
    query(
        "INSERT INTO ingest_lease (holder_id, host, pid, process_start, version, expires_at) "
        "VALUES ('other', %s, 4194321, %s, 'old', now() + interval '1 hour')",
        ("elsewhere", me.start) if host == "elsewhere" else (me.host, ""),
    )
    assert ingest_running(migrated_url)
    with pytest.raises(LockHeldError) as caught:
        IngestLock(migrated_url).acquire()
    assert "pid 4194321, datasync old, since" in caught.value.message
    query(EXPIRE_NOW)
    assert not ingest_running(migrated_url)
    with IngestLock(migrated_url) as lock:
        assert lock.held()


@pytest.fixture
def short_watch(monkeypatch: pytest.MonkeyPatch) -> float:
    monkeypatch.setattr(lock_module, "HEARTBEAT_WATCH_S", 1.0)
    monkeypatch.setattr(lock_module, "WATCH_POLL_S", 0.1)
    return 1.0


def insert_container_holder(query: Query) -> None:
    """A holder on this host and boot, in another pid namespace (another container)."""
    boot = this_process().start.split(" ")[0]
    query(
        "INSERT INTO ingest_lease (holder_id, host, pid, process_start, version, expires_at) "
        "VALUES ('container', %s, 7, %s, 'old', now() + interval '1 hour')",
        (this_process().host, f"{boot} pid:[1] 5"),
    )


def test_holder_in_another_container_that_stopped_renewing_is_taken_over(
    migrated_url: str, query: Query, short_watch: float, caplog: pytest.LogCaptureFixture
) -> None:
    insert_container_holder(query)
    caplog.set_level(logging.WARNING, logger="datasync_cli")
    started = time.monotonic()
    with IngestLock(migrated_url) as lock:
        assert lock.held()
    assert short_watch <= time.monotonic() - started < short_watch + 3
    messages = [r.getMessage() for r in caplog.records]
    assert any("in another pid namespace of this host" in m for m in messages), messages
    assert any(m.startswith("took over the ingest lease from a dead holder (host ")
               and "pid 7," in m for m in messages), messages


def test_holder_in_another_container_that_renews_is_not_taken_over(
    migrated_url: str, query: Query, short_watch: float
) -> None:
    insert_container_holder(query)
    done = threading.Event()

    def renew() -> None:
        while not done.wait(0.2):
            query("UPDATE ingest_lease SET heartbeat_at = clock_timestamp()")

    beating = threading.Thread(target=renew)
    beating.start()
    try:
        with pytest.raises(LockHeldError) as caught:
            IngestLock(migrated_url).acquire()
    finally:
        done.set()
        beating.join()
    assert "already running" in caught.value.message and "pid 7," in caught.value.message
    assert query("SELECT holder_id FROM ingest_lease") == [("container",)]


def test_own_expired_lease_is_renewed_when_nobody_took_it(
    migrated_url: str, query: Query
) -> None:
    with IngestLock(migrated_url) as lock:
        query(EXPIRE_NOW)
        assert not lock.held()
        assert lock.reassert() is True
        assert lock.held()
        assert lock.reassert() is False


def test_deleted_lease_row_stops_the_holder(migrated_url: str, query: Query) -> None:
    with IngestLock(migrated_url) as lock:
        query("DELETE FROM ingest_lease")
        with pytest.raises(LockHeldError) as caught:
            lock.reassert()
    assert "its row in ingest_lease was deleted" in caught.value.message


def test_lease_survives_every_session_ending(migrated_url: str, query: Query) -> None:
    with IngestLock(migrated_url) as lock:
        ended = query(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = 'datasync' AND datname = current_database()"
        )
        assert ended == [(1,)]
        with pytest.raises(LockHeldError):
            IngestLock(migrated_url).acquire()
        assert lock.reassert() is False  # on a new connection; nothing had lapsed
        assert lock.held()


def test_writes_commit_only_while_the_lease_is_ours(migrated_url: str, query: Query) -> None:
    first = IngestLock(migrated_url)
    first.acquire()
    with CopyWriter(migrated_url, lease=first) as writer, \
            CheckpointStore(migrated_url, lease=first) as store:
        writer.write(batch_of(1))
        store.save(Checkpoint(range_id="r1"))
        query(EXPIRE_NOW)
        with IngestLock(migrated_url):
            with pytest.raises(LockHeldError):
                writer.write(batch_of(2, 1))
            with pytest.raises(LockHeldError):
                store.save(Checkpoint(range_id="r2"))
            with pytest.raises(LockHeldError):
                store.save_plan([Checkpoint(range_id="r3")])
    assert query("SELECT id FROM ingested_events") == [("ev-1",)]
    assert query("SELECT reader_id, events FROM cursor_state ORDER BY 1") == [("r0", 1), ("r1", 0)]
    first.release()


def test_a_write_renews_the_lease(migrated_url: str, query: Query) -> None:
    with IngestLock(migrated_url) as lock, CopyWriter(migrated_url, lease=lock) as writer:
        query(EXPIRE_NOW)  # e.g. the heartbeat could not reach the database for a while
        writer.write(batch_of(1))
        assert lock.held()


def test_takeover_waits_for_a_write_in_flight(migrated_url: str, query: Query) -> None:
    """A write that renewed the lease holds its row until it commits: a takeover that started
    meanwhile sees the renewed lease, not the expired one."""
    first = IngestLock(migrated_url)
    first.acquire()
    query(EXPIRE_NOW)
    conn = psycopg2.connect(migrated_url)
    outcome: list[BaseException | None] = []
    try:
        with conn.cursor() as cur:
            first.fence(cur)  # renewed, uncommitted: the row is locked

            def take() -> None:
                try:
                    IngestLock(migrated_url).acquire()
                    outcome.append(None)
                except LockHeldError as exc:
                    outcome.append(exc)

            taker = threading.Thread(target=take)
            taker.start()
            time.sleep(0.5)
            assert taker.is_alive(), "the takeover did not wait for the write in flight"
            conn.commit()
            taker.join(10)
    finally:
        conn.close()
    assert len(outcome) == 1 and isinstance(outcome[0], LockHeldError)
    assert first.held()
    first.release()


def test_a_lease_row_locked_too_long_counts_as_held(
    migrated_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lock_module, "LOCK_WAIT_S", 1)
    first = IngestLock(migrated_url)
    first.acquire()
    conn = psycopg2.connect(migrated_url)
    try:
        with conn.cursor() as cur:
            first.fence(cur)  # a holder paused between its last write and COMMIT
            started = time.monotonic()
            with pytest.raises(LockHeldError) as caught:
                IngestLock(migrated_url).acquire()
            assert time.monotonic() - started < 5
        conn.rollback()
    finally:
        conn.close()
    assert "locked by a transaction that has not finished" in caught.value.message
    first.release()


def test_status_figures_name_the_holder(migrated_url: str) -> None:
    assert lease_holder(migrated_url) is None
    assert store_stats(migrated_url).as_dict()["ingest_holder"] is None
    with IngestLock(migrated_url):
        holder = store_stats(migrated_url).as_dict()["ingest_holder"]
        assert lease_holder(migrated_url) is not None
    assert holder["host"] == this_process().host and holder["pid"] == os.getpid()
    assert holder["live"] is True and holder["version"] == __version__
    assert 25 < holder["expires_in_s"] <= lock_module.LEASE_TTL_S
    assert holder["state"].startswith(f"host {this_process().host}, pid {os.getpid()}, ")
