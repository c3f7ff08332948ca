"""store_stats, iter_ids and id_checksum against real data."""

from __future__ import annotations

from typing import Any

import pytest

from datasync_cli.mockapi.truth import id_checksum as truth_checksum
from datasync_cli.models import Checkpoint, Position
from datasync_cli.sink import CheckpointStore, CopyWriter, id_checksum, iter_ids, store_stats
from datasync_cli.sink import stats as stats_module
from datasync_cli.sink.copy_format import make_batch
from datasync_cli.transform import transform_page

pytestmark = pytest.mark.db

IDS = ["b", "B", "a-1", "a_1", "é", "z", "Ω", "\U0001f600", "10", "9", "a 2"]


def write(dsn: str, records: list[Any], reader: str = "r0") -> None:
    events, rejected = transform_page(records)
    checkpoint = Checkpoint(
        range_id=reader,
        position=Position(events[-1].ts_us // 1000, events[-1].id) if events else None,
        events=len(events),
        rejected=len(rejected),
        endpoint="feed",
    )
    with CopyWriter(dsn) as writer:
        writer.write(make_batch(events, rejected, checkpoint))


def test_unmigrated_database(database_url: str) -> None:
    stats = store_stats(database_url)
    assert not stats.migrated
    assert stats.as_dict()["migrated"] is False
    assert stats.ingested == 0 and stats.checkpoints == []


def test_empty_migrated_database(migrated_url: str) -> None:
    stats = store_stats(migrated_url)
    assert stats.migrated and stats.schema_versions[0] == "0001"
    assert (stats.ingested, stats.rejected, stats.min_ts_ms, stats.max_ts_ms) == (0, 0, None, None)
    assert stats.last_run is None and stats.last_run_status is None and not stats.run_completed


def test_counts_reasons_range_checkpoints_and_run(migrated_url: str) -> None:
    records: list[Any] = [
        {"id": i, "timestamp": 1769541612369 - n} for n, i in enumerate(IDS)
    ]
    records[3]["timestamp"] = "2025-12-28T00:00:00.001Z"
    records += [
        {"id": "", "timestamp": 1},
        {"timestamp": 2},
        {"id": "x1", "timestamp": "never"},
        {"id": "x2", "timestamp": "later"},
    ]
    write(migrated_url, records, reader="r0")
    write(migrated_url, [], reader="r1")
    with CheckpointStore(migrated_url) as store:
        run = store.start_run(100)
        store.finish_run(run, "completed", len(IDS), 4)
    stats = store_stats(migrated_url)
    assert stats.ingested == len(IDS)
    assert stats.rejected == 4
    assert stats.rejected_by_reason == {"unparseable timestamp": 2, "empty id": 1, "missing id": 1}
    assert stats.min_ts_ms == 1766880000001
    assert stats.max_ts_ms == 1769541612369
    assert [c.range_id for c in stats.checkpoints] == ["r0", "r1"]
    assert stats.checkpoints[0].checkpoint.events == len(IDS)
    assert stats.checkpoints[0].age_s >= 0
    assert stats.run_completed and stats.last_run_status == "completed"
    as_dict = stats.as_dict()
    position = stats.checkpoints[0].checkpoint.position
    assert position is not None
    assert as_dict["checkpoints"][0]["last_id"] == position.event_id
    assert as_dict["last_run"]["source_total"] == 100
    assert as_dict["readers_unfinished"] == 2


def test_iter_ids_streams_in_python_sort_order(
    migrated_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stats_module, "ID_FETCH_SIZE", 3)
    write(migrated_url, [{"id": i, "timestamp": 1769541612369} for i in IDS])
    assert list(iter_ids(migrated_url)) == sorted(IDS)


def test_id_checksum_matches_the_mock_truth(migrated_url: str) -> None:
    write(migrated_url, [{"id": i, "timestamp": 1769541612369} for i in IDS])
    result = id_checksum(migrated_url)
    assert result.count == len(IDS)
    assert result.checksum == truth_checksum(IDS)
