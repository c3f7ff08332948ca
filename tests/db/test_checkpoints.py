"""CheckpointStore: plans, splits, reset and run records in a real database."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from datasync_cli.errors import DatabaseError
from datasync_cli.models import Checkpoint, Position
from datasync_cli.sink import CheckpointStore

pytestmark = pytest.mark.db

Query = Any


def cp(reader: str, **fields: Any) -> Checkpoint:
    return Checkpoint(range_id=reader, **fields)


def test_empty_store(migrated_url: str) -> None:
    with CheckpointStore(migrated_url) as store:
        assert store.load_all() == []
        assert store.last_run() is None


def test_every_field_round_trips(migrated_url: str) -> None:
    full = cp(
        "r1",
        hi_ms=1769541612369,
        lo_ms=-5,
        cursor="eyJpZCI6IngifQ==",
        position=Position(1769541600000, "id \t\n\U0001f600"),
        events=2**40,
        rejected=3,
        finished=True,
        endpoint="standard",
    )
    with CheckpointStore(migrated_url) as store:
        store.save(full)
        store.save(cp("r0"))
        assert store.load_all() == [cp("r0"), full]


def test_save_plan_keeps_finished_ranges_and_drops_replaced_ones(migrated_url: str) -> None:
    with CheckpointStore(migrated_url) as store:
        store.save_plan([cp("a", finished=True), cp("b"), cp("c")])
        store.save_plan([cp("b", lo_ms=10), cp("d")])
        assert store.load_all() == [cp("a", finished=True), cp("b", lo_ms=10), cp("d")]
        store.save_plan([cp("z")], replace_all=True)
        assert store.load_all() == [cp("z")]
        store.save_plan([], replace_all=True)
        assert store.load_all() == []


def test_split_range_moves_the_split_ranges_bound_and_adds_readers(migrated_url: str) -> None:
    parent = cp("r0", hi_ms=1000, lo_ms=0, position=Position(900, "x"), events=7)
    with CheckpointStore(migrated_url) as store:
        store.save(parent)
        store.split_range("r0", 500, [cp("r1", hi_ms=499, lo_ms=250), cp("r2", hi_ms=249, lo_ms=0)])
        assert store.load_all() == [
            cp("r0", hi_ms=1000, lo_ms=500, position=Position(900, "x"), events=7),
            cp("r1", hi_ms=499, lo_ms=250),
            cp("r2", hi_ms=249, lo_ms=0),
        ]


def test_reset_deletes_checkpoints_only(migrated_url: str, query: Query) -> None:
    query("INSERT INTO ingested_events (id, data) VALUES ('kept', '{}')")
    with CheckpointStore(migrated_url) as store:
        store.save_plan([cp("a"), cp("b"), cp("c", finished=True)])
        assert store.reset() == 3
        assert store.load_all() == []
        assert store.reset() == 0
    assert query("SELECT count(*) FROM ingested_events") == [(1,)]


def test_run_records(migrated_url: str) -> None:
    with CheckpointStore(migrated_url) as store:
        first = store.start_run(None)
        second = store.start_run(3_000_000)  # the first never finished: its process died
        runs = store.last_run()
        assert runs is not None and runs.run_id == second and runs.status == "running"
        store.update_run_total(second, 3_000_003)
        store.finish_run(second, "completed", 2_999_990, 13, None)
        last = store.last_run()
        assert last is not None
        assert (last.status, last.source_total, last.inserted, last.rejected) == (
            "completed", 3_000_003, 2_999_990, 13
        )
        assert last.finished_at is not None and last.finished_at >= last.started_at
        third = store.start_run(None)
        store.finish_run(third, "interrupted", 5, 0, "interrupted by signal 2")
        assert first < second < third
        with pytest.raises(ValueError):
            store.finish_run(third, "exploded", 0, 0)  # type: ignore[arg-type]


def test_stale_running_run_is_marked_interrupted(migrated_url: str, query: Query) -> None:
    with CheckpointStore(migrated_url) as store:
        crashed = store.start_run(None)
        store.start_run(None)
    (row,) = query("SELECT status, message FROM ingest_runs WHERE run_id = %s", (crashed,))
    assert row[0] == "interrupted" and "without recording an outcome" in row[1]


def test_shared_between_threads(migrated_url: str) -> None:
    errors: list[BaseException] = []
    with CheckpointStore(migrated_url) as store:

        def work(n: int) -> None:
            try:
                for i in range(20):
                    store.save(cp(f"t{n}", events=i))
                    store.load_all()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert [c.events for c in store.load_all()] == [19, 19, 19, 19]


def test_reconnects_once_after_the_session_was_killed(migrated_url: str, query: Query) -> None:
    with CheckpointStore(migrated_url) as store:
        store.save(cp("a"))
        query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = 'datasync'"
        )
        assert store.load_all() == [cp("a")]


def test_unmigrated_database_says_run_migrate(database_url: str) -> None:
    with CheckpointStore(database_url) as store, pytest.raises(DatabaseError) as caught:
        store.load_all()
    assert caught.value.hint == "run `datasync migrate`"
