"""CopyWriter against a real PostgreSQL: one transaction per batch, idempotent, self-healing."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import psycopg2
import pytest
from psycopg2 import sql

from datasync_cli.clock import FakeClock
from datasync_cli.errors import DatabaseError
from datasync_cli.models import Batch, Checkpoint, Event, Position
from datasync_cli.sink import CheckpointStore, CopyWriter
from datasync_cli.sink.copy_format import make_batch
from datasync_cli.transform import transform_page

pytestmark = pytest.mark.db

Query = Any


def record(n: int, prefix: str = "ev", **changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": f"{prefix}-{n}",
        "sessionId": f"s-{n % 7}",
        "type": ["click", "page_view", "purchase"][n % 3],
        "name": f"event_{n}",
        "properties": {"page": f"/p/{n}", "n": n},
        "timestamp": 1769541612369 - n * 37
        if n % 3 == 0
        else f"2026-01-27T19:19:{n % 60:02d}.629Z",
    }
    base.update(changes)
    return base


def batch_of(
    records: list[Any], reader: str = "r0", events_total: int = 0, finished: bool = False
) -> Batch:
    events, rejected = transform_page(records)
    last = events[-1] if events else None
    checkpoint = Checkpoint(
        range_id=reader,
        hi_ms=1769541612369,
        lo_ms=1766880000000,
        cursor="opaque-cursor",
        position=Position(last.ts_us // 1000, last.id) if last else None,
        events=events_total + len(events),
        rejected=len(rejected),
        finished=finished,
        endpoint="feed",
    )
    return make_batch(events, rejected, checkpoint, fetched=len(records))


def stored(query: Query) -> dict[str, tuple[Any, ...]]:
    rows = query(
        "SELECT id, event_type, (extract(epoch FROM timestamp) * 1000000)::bigint, data "
        "FROM ingested_events"
    )
    return {r[0]: r[1:] for r in rows}


def count(query: Query, table: str) -> int:
    return int(query(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))[0][0])


def test_batch_lands_with_exact_values_and_its_checkpoint(migrated_url: str, query: Query) -> None:
    records = [record(n) for n in range(50)]
    records.append(record(50, name='tab\tnl\nback\\slash "q" \U0001f600 \\N', type=None))
    batch = batch_of(records)
    with CopyWriter(migrated_url) as writer:
        result = writer.write(batch)
    assert (result.inserted, result.duplicates, result.rejected) == (51, 0, 0)
    rows = stored(query)
    assert set(rows) == {r["id"] for r in records}
    for event in batch.events:
        event_type, ts_us, _ = rows[event.id]
        assert event_type == event.event_type
        assert ts_us == event.ts_us
    for rec in records:
        assert rows[rec["id"]][2] == rec  # jsonb equals the record as received
    assert count(query, "staging_events") == 0
    with CheckpointStore(migrated_url) as store:
        assert store.load_all() == [batch.checkpoint]


def test_same_batch_twice_lands_once(migrated_url: str, query: Query) -> None:
    batch = batch_of([record(n) for n in range(20)])
    with CopyWriter(migrated_url) as writer:
        first = writer.write(batch)
        second = writer.write(batch)
    assert (first.inserted, first.duplicates) == (20, 0)
    assert (second.inserted, second.duplicates) == (0, 20)
    assert count(query, "ingested_events") == 20


def test_duplicates_inside_one_batch(migrated_url: str, query: Query) -> None:
    records = [record(n % 5) for n in range(15)]
    with CopyWriter(migrated_url) as writer:
        result = writer.write(batch_of(records))
    assert (result.inserted, result.duplicates) == (5, 10)
    assert count(query, "ingested_events") == 5


def test_batch_without_events_still_saves_the_checkpoint(migrated_url: str) -> None:
    batch = batch_of([], reader="r9", events_total=123, finished=True)
    with CopyWriter(migrated_url) as writer:
        result = writer.write(batch)
    assert (result.inserted, result.duplicates, result.rejected) == (0, 0, 0)
    with CheckpointStore(migrated_url) as store:
        (saved,) = store.load_all()
    assert saved.finished and saved.events == 123 and saved.position is None


def test_rejected_records_are_stored_once_even_when_fetched_again(
    migrated_url: str, query: Query
) -> None:
    records = [record(1), record(2, id=""), record(3, timestamp="soon"), record(4, name="a\x00")]
    batch = batch_of(records)
    with CopyWriter(migrated_url) as writer:
        first = writer.write(batch)
        again = writer.write(batch)
    assert (first.inserted, first.rejected) == (1, 3)
    assert (again.inserted, again.rejected) == (0, 0)
    rows = query("SELECT event_id, reason, raw FROM rejected_events")
    by_reason = {r[1].split(":")[0]: (r[0], r[2]) for r in rows}
    assert set(by_reason) == {
        "empty id",
        "unparseable timestamp",
        "string holds a NUL character (\\u0000), which PostgreSQL cannot store",
    }
    assert by_reason["empty id"][0] is None
    assert by_reason["unparseable timestamp"][0] == "ev-3"
    event_id, raw = by_reason[
        "string holds a NUL character (\\u0000), which PostgreSQL cannot store"
    ]
    assert event_id == "ev-4"
    assert "\\u0000" in raw


def test_failed_checkpoint_rolls_back_the_whole_batch(migrated_url: str, query: Query) -> None:
    query(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'checkpoint refused for the test'; END $$"
    )
    query(
        "CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON cursor_state "
        "FOR EACH ROW EXECUTE FUNCTION refuse()"
    )
    batch = batch_of([record(n) for n in range(10)] + [record(99, id="")])
    with CopyWriter(migrated_url) as writer:
        with pytest.raises(DatabaseError) as caught:
            writer.write(batch)
        assert "checkpoint refused for the test" in caught.value.message
        for table in ("ingested_events", "rejected_events", "staging_events", "cursor_state"):
            assert count(query, table) == 0, table
        query("DROP TRIGGER refuse ON cursor_state")
        result = writer.write(batch)  # the same writer and connection carry on
    assert result.inserted == 10
    assert count(query, "ingested_events") == 10


def test_record_postgres_refuses_is_rejected_alone(migrated_url: str, query: Query) -> None:
    good = batch_of([record(n) for n in range(5)])
    broken = Event(id="broken", event_type=None, ts_us=0, data='{"unterminated": ')
    batch = make_batch([*good.events, broken], [], good.checkpoint)
    with CopyWriter(migrated_url) as writer:
        result = writer.write(batch)
    assert (result.inserted, result.rejected) == (5, 1)
    (row,) = query("SELECT event_id, reason FROM rejected_events")
    assert row[0] == "broken" and row[1].startswith("PostgreSQL refused the record")
    assert count(query, "ingested_events") == 5


def _backend_of(query: Query, condition: str) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        rows = query(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'datasync' "
            f"AND datname = current_database() AND {condition}"
        )
        if rows:
            return int(rows[0][0])
        time.sleep(0.02)
    raise AssertionError("the writer's backend never showed up")


def test_connection_killed_between_batches_reconnects(migrated_url: str, query: Query) -> None:
    with CopyWriter(migrated_url, clock=FakeClock()) as writer:
        writer.write(batch_of([record(n) for n in range(5)]))
        query("SELECT pg_terminate_backend(%s)", (_backend_of(query, "true"),))
        result = writer.write(batch_of([record(n) for n in range(5, 10)]))
        assert writer.reconnects == 1
    assert result.inserted == 5
    assert count(query, "ingested_events") == 10


def test_connection_killed_mid_batch_redoes_it_once(migrated_url: str, query: Query) -> None:
    blocker = psycopg2.connect(migrated_url)
    with blocker.cursor() as cur:  # an uncommitted row the writer's upsert must wait for
        cur.execute("INSERT INTO ingested_events (id, data) VALUES ('mid-0', '{}')")
    batch = batch_of([record(n, prefix="mid") for n in range(10)])
    outcome: list[Any] = []
    clock = FakeClock()
    with CopyWriter(migrated_url, clock=clock) as writer:
        thread = threading.Thread(target=lambda: outcome.append(writer.write(batch)))
        thread.start()
        pid = _backend_of(query, "wait_event_type = 'Lock'")
        query("SELECT pg_terminate_backend(%s)", (pid,))
        blocker.rollback()
        blocker.close()
        thread.join(60)
        assert writer.reconnects == 1
    assert outcome and outcome[0].inserted == 10
    assert count(query, "ingested_events") == 10
    assert count(query, "staging_events") == 0
    with CheckpointStore(migrated_url) as store:
        assert store.load_all() == [batch.checkpoint]


def test_gives_up_after_the_reconnect_budget(
    pg_dsn_base: str, migrated_url: str, query: Query
) -> None:
    clock = FakeClock()
    writer = CopyWriter(migrated_url, clock=clock, reconnect_budget_s=60)
    name = query("SELECT current_database()")[0][0]
    admin = psycopg2.connect(pg_dsn_base)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(
            sql.Identifier(name)))
        cur.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND application_name = 'datasync'",
            (name,),
        )
    try:
        with pytest.raises(DatabaseError) as caught:
            writer.write(batch_of([record(1)]))
        assert "could not reconnect within 60 s" in caught.value.message
        assert sum(clock.sleeps) == pytest.approx(60)
        assert max(clock.sleeps) <= 8
    finally:
        with admin.cursor() as cur:
            cur.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(
                sql.Identifier(name)))
        admin.close()
        writer.close()


def test_stop_flag_ends_the_reconnect_wait(migrated_url: str, query: Query) -> None:
    stop = threading.Event()
    clock = FakeClock()
    with CopyWriter(migrated_url, clock=clock, stop=stop) as writer:
        query("SELECT pg_terminate_backend(%s)", (_backend_of(query, "true"),))
        stop.set()
        with pytest.raises(DatabaseError) as caught:
            writer.write(batch_of([record(1)]))
    assert "stopped while reconnecting" in caught.value.message
    assert len(clock.sleeps) == 1
    assert count(query, "ingested_events") == 0


def test_read_only_database_is_one_clear_line(migrated_url: str, query: Query) -> None:
    name = query("SELECT current_database()")[0][0]
    query(sql.SQL("ALTER DATABASE {} SET default_transaction_read_only = on").format(
        sql.Identifier(name)))
    with CopyWriter(migrated_url) as writer, pytest.raises(DatabaseError) as caught:
        writer.write(batch_of([record(1)]))
    assert "read-only" in caught.value.message
    assert "\n" not in str(caught.value)


def test_missing_privileges_are_one_clear_line(migrated_url: str, query: Query) -> None:
    role = f"datasync_ro_{uuid.uuid4().hex[:8]}"
    query(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    try:
        dsn = psycopg2.extensions.make_dsn(migrated_url, user=role)
        try:
            writer = CopyWriter(dsn)
        except DatabaseError as exc:
            pytest.skip(f"cannot log in as a fresh role on this server: {exc}")
        with writer, pytest.raises(DatabaseError) as caught:
            writer.write(batch_of([record(1)]))
        assert caught.value.message.startswith("permission denied while saving a batch")
    finally:
        query(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        query(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_a_later_version_with_different_content_is_kept_as_a_conflict(
    migrated_url: str, query: Query
) -> None:
    first = [record(n) for n in range(4)]
    changed = record(1, name="renamed")  # same id, different content
    same_other_spelling = record(2, timestamp=record(2)["timestamp"])  # identical copy
    feed_spelling = record(0, timestamp=1769541612369)  # record(0) is epoch ms already
    with CopyWriter(migrated_url) as writer:
        writer.write(batch_of(first))
        result = writer.write(batch_of([changed, same_other_spelling, feed_spelling, record(9)]))
        again = writer.write(batch_of([changed]))
    assert (result.inserted, result.duplicates, result.conflicts) == (1, 2, 1)
    assert (again.inserted, again.duplicates, again.conflicts) == (0, 0, 1)
    (row,) = query("SELECT id, data->>'name' FROM event_conflicts")
    assert row == ("ev-1", "renamed")  # kept once, however often it is seen
    assert stored(query)["ev-1"][2]["name"] == "event_1"  # the first version stays


def test_the_same_event_spelt_by_the_other_endpoint_is_a_duplicate(
    migrated_url: str, query: Query
) -> None:
    iso = record(1)  # ISO timestamp, as the standard endpoint sends it
    ts_ms = int(stored_instant_ms(iso["timestamp"]))
    with CopyWriter(migrated_url) as writer:
        writer.write(batch_of([iso]))
        result = writer.write(batch_of([record(1, timestamp=ts_ms)]))
    assert (result.duplicates, result.conflicts) == (1, 0)
    assert count(query, "event_conflicts") == 0


def stored_instant_ms(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000


def test_two_versions_inside_one_page_keep_the_first_and_the_conflict(
    migrated_url: str, query: Query
) -> None:
    with CopyWriter(migrated_url) as writer:
        result = writer.write(batch_of([record(5), record(5, name="other")]))
    assert (result.inserted, result.conflicts) == (1, 1)
    assert stored(query)["ev-5"][2]["name"] == "event_5"
    assert query("SELECT data->>'name' FROM event_conflicts") == [("other",)]


def test_a_row_over_the_index_size_limit_is_rejected_alone(
    migrated_url: str, query: Query
) -> None:
    good = batch_of([record(n) for n in range(3)])
    huge_id = "".join(uuid.uuid4().hex for _ in range(200))  # 6400 bytes, not compressible
    huge = Event(id=huge_id, event_type=None, ts_us=0, data="{}")
    with CopyWriter(migrated_url) as writer:
        result = writer.write(make_batch([*good.events, huge], [], good.checkpoint))
    assert (result.inserted, result.rejected) == (3, 1)
    (reason,) = query("SELECT reason FROM rejected_events")[0]
    assert reason.startswith("PostgreSQL refused the record")


def test_counts_add_up_to_what_was_fetched(migrated_url: str) -> None:
    records = [record(n) for n in range(10)] + [record(3), record(4, name="x"), record(99, id="")]
    with CopyWriter(migrated_url) as writer:
        writer.write(batch_of(records[:5]))
        r = writer.write(batch_of(records))
    assert r.inserted + r.duplicates + r.conflicts + r.rejected == len(records)
