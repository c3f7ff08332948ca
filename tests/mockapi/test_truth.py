"""The truth module agrees with what a full paginated read returns, and with PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
import psycopg2
import pytest
import requests

from datasync_cli.mockapi import CHECKSUM_SQL, FEED_PATH, MockConfig, StreamTruth, id_checksum

from .conftest import StartMock, keyed, read_all, stream_token


def storable(record: dict[str, Any]) -> bool:
    """A deliberately simple validity rule for the simulator's own bad-record kinds."""
    if not isinstance(record.get("id"), str) or not record["id"]:
        return False
    stamp = record.get("timestamp")
    if isinstance(stamp, str):
        try:
            datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        except ValueError:
            return False
    elif not isinstance(stamp, int):
        return False
    return b"\\u0000" not in orjson.dumps(record)


def test_truth_matches_a_full_read(start_mock: StartMock, http: requests.Session) -> None:
    server = start_mock(events=12_000, bad_records=10, duplicates=5)
    truth = StreamTruth(server.config)
    records, bodies = read_all(http, server.url + "/events", keyed(server))
    valid = {r["id"] for r in records if storable(r)}
    expected = list(truth.iter_valid_ids())
    assert len(expected) == len(set(expected)) == 11_990
    assert valid == set(expected)
    summary = truth.summary()
    assert summary.valid_count == len(valid)
    assert summary.valid_checksum == id_checksum(valid)
    assert summary.bad_count == sum(1 for r in records if not storable(r)) == 10
    assert summary.reported_total == bodies[0]["meta"]["total"] == 12_000
    bad_ids = {b.event_id for b in truth.bad_records()}
    assert not bad_ids & valid


def test_truth_matches_the_feed(start_mock: StartMock, http: requests.Session) -> None:
    server = start_mock(events=7_000, bad_records=5)
    headers = {**keyed(server), "X-Stream-Token": stream_token(http, server)}
    records, _ = read_all(http, server.root_url + FEED_PATH, headers)
    assert {r["id"] for r in records if storable(r)} == set(StreamTruth(server.config)
                                                           .iter_valid_ids())


def test_truth_is_deterministic_and_seeded(start_mock: StartMock) -> None:
    a = StreamTruth(start_mock(events=500).config)
    b = StreamTruth(start_mock(events=500).config)
    c = StreamTruth(start_mock(events=500, seed=7).config)
    assert list(a.iter_valid_ids()) == list(b.iter_valid_ids())
    assert not set(a.iter_valid_ids()) & set(c.iter_valid_ids())


@pytest.mark.db
def test_checksum_formula_matches_postgresql(database_url: str) -> None:
    ids = list(StreamTruth(MockConfig(events=2_000, bad_records=5)).iter_valid_ids())
    with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute("CREATE TEMP TABLE ingested_events (id TEXT PRIMARY KEY)")
        cur.executemany("INSERT INTO ingested_events (id) VALUES (%s)", [(i,) for i in ids])
        cur.execute(CHECKSUM_SQL)
        row = cur.fetchone()
    assert row is not None
    count, checksum = row
    assert (count, int(checksum)) == (len(ids), id_checksum(ids))
