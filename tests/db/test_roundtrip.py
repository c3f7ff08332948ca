"""Property tests through a real COPY and upsert: whatever is accepted reads back identical."""

from __future__ import annotations

import io
import json
from typing import Any

import psycopg2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datasync_cli.models import Checkpoint, Event, Rejected
from datasync_cli.sink import CopyWriter
from datasync_cli.sink.copy_format import copy_sql, encode_rows, make_batch
from datasync_cli.transform import MAX_TS_US, MIN_TS_US, transform_record

pytestmark = pytest.mark.db

Query = Any

# Examples share one database per test; each example starts from empty tables.
PROPERTY = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

pg_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"))
any_text = st.text()  # includes NUL and lone surrogates, which must be rejected, not crash

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=False, allow_infinity=False),
    any_text,
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text, inner, max_size=3),
    max_leaves=10,
)


def checkpoint() -> Checkpoint:
    return Checkpoint(range_id="prop")


@PROPERTY
@given(
    rows=st.lists(
        st.tuples(pg_text, st.none() | pg_text, st.integers(MIN_TS_US, MAX_TS_US), pg_text),
        max_size=20,
    )
)
def test_any_text_survives_copy_into_staging(
    rows: list[tuple[str, str | None, int, str]], migrated_url: str, query: Query
) -> None:
    query("DELETE FROM staging_events")
    events = [
        Event(id=i, event_type=t, ts_us=ts, data=json.dumps(d)) for i, t, ts, d in rows
    ]
    conn = psycopg2.connect(migrated_url, client_encoding="UTF8")
    try:
        with conn.cursor() as cur:
            cur.copy_expert(copy_sql("staging_events"), io.BytesIO(encode_rows(events)))
        conn.commit()
    finally:
        conn.close()
    back = query(
        "SELECT id, event_type, (extract(epoch FROM timestamp) * 1000000)::bigint, data "
        "FROM staging_events"
    )
    expected = [(e.id, e.event_type, e.ts_us, json.loads(e.data)) for e in events]
    assert sorted(back, key=repr) == sorted(expected, key=repr)


@PROPERTY
@given(
    extra=st.dictionaries(any_text, json_value, max_size=5),
    event_id=any_text.filter(lambda s: bool(s.strip())),
    event_type=st.none() | any_text,
)
def test_any_record_is_stored_exactly_or_rejected(
    extra: dict[str, Any],
    event_id: str,
    event_type: str | None,
    migrated_url: str,
    query: Query,
) -> None:
    query("TRUNCATE ingested_events, rejected_events")
    record = {**extra, "id": event_id, "type": event_type, "timestamp": 1769541612369}
    result = transform_record(record)
    events = [result] if isinstance(result, Event) else []
    rejected = [result] if isinstance(result, Rejected) else []
    with CopyWriter(migrated_url) as writer:
        outcome = writer.write(make_batch(events, rejected, checkpoint()))
    if isinstance(result, Event):
        assert outcome.inserted == 1
        # Compared by PostgreSQL against text from a different serializer (ASCII escapes).
        (row,) = query(
            "SELECT id, event_type, data = %s::jsonb, "
            "(extract(epoch FROM timestamp) * 1000)::bigint FROM ingested_events",
            (json.dumps(record, ensure_ascii=True),),
        )
        assert row == (event_id, event_type, True, 1769541612369)
    else:
        assert outcome.rejected == 1
        (row,) = query("SELECT reason, raw FROM rejected_events")
        assert row[0] == result.reason
        assert json.loads(row[1]) == record


@PROPERTY
@given(instants=st.lists(st.integers(MIN_TS_US, MAX_TS_US), min_size=1, max_size=30, unique=True))
def test_every_instant_in_range_is_stored_exactly(
    instants: list[int], migrated_url: str, query: Query
) -> None:
    query("TRUNCATE ingested_events")
    events = [Event(id=str(us), event_type=None, ts_us=us, data="{}") for us in instants]
    with CopyWriter(migrated_url) as writer:
        writer.write(make_batch(events, [], checkpoint()))
    rows = query(
        "SELECT id, (extract(epoch FROM timestamp) * 1000000)::bigint FROM ingested_events"
    )
    assert sorted(int(us) for _, us in rows) == sorted(instants)
    assert all(int(i) == int(us) for i, us in rows)
