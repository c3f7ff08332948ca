"""Every record the source sends is accounted for (issue 10, item 2).

Each fetched record ends as stored, as an already-stored duplicate, or in rejected_events, and
the summary adds up: fetched = inserted + duplicates + rejected + conflicts. An incremental run
stores every event added since the last run however the stored timestamps are spread.
"""

from __future__ import annotations

import pytest
from e2e import harness as h

from . import cli
from .conftest import Serve
from .service import Request, Service
from .stream import NEWEST_MS, PageOut, Stream, make_events, record_entry

pytestmark = pytest.mark.e2e

FAR_FUTURE_MS = 253_370_764_800_000  # 9999-01-01T00:00:00Z
EARLY_MS = 1_000  # 1970-01-01T00:00:01Z


def _standard_or_feed(access: str) -> bool:
    return access == "feed"


@pytest.mark.parametrize("access", ["feed", "standard"])
def test_incremental_run_after_a_far_future_record_stores_the_new_events(
    serve: Serve, dsn: str, access: str
) -> None:
    future = record_entry("far-future-9999", FAR_FUTURE_MS, timestamp="9999-01-01T00:00:00.000Z")
    old = make_events(300, seed=2)
    stream = Stream([future, *old])
    server = serve(Service(stream, stream_access=_standard_or_feed(access)))
    scenario = f"incremental run after a year-9999 record ({access})"
    cli.ok(cli.ingest(server, dsn), scenario + ", first run")
    h.assert_exact_set(dsn, stream.ids(), scenario + ", first run")

    new = make_events(50, newest_ms=NEWEST_MS + 60_000, seed=3)
    stream.entries = [future, *new, *old]
    run = cli.ingest(server, dsn)

    cli.ok(run, scenario)
    h.assert_exact_set(dsn, stream.ids(), scenario)
    cli.accounted(run, scenario)


def test_incremental_run_with_an_out_of_order_1970_record_stores_every_new_event(
    serve: Serve, dsn: str
) -> None:
    old = make_events(300, seed=4)
    stream = Stream(list(old))
    server = serve(Service(stream, stream_access=False))
    scenario = "incremental run with a 1970 record among the new events"
    cli.ok(cli.ingest(server, dsn), scenario + ", first run")

    new = make_events(300, newest_ms=NEWEST_MS + 600_000, seed=5)
    early = record_entry("early-1970", EARLY_MS, timestamp="1970-01-01T00:00:01.000Z")
    new.insert(30, early)
    stream.entries = [*new, *old]
    run = cli.ingest(server, dsn)

    cli.ok(run, scenario)
    stored = set(h.stored_ids(dsn))
    rejected = {r[0] for r in h.query(dsn, "SELECT event_id FROM rejected_events")}
    missing = stream.ids() - stored - rejected
    assert not missing, (
        f"{scenario}: {len(missing)} served records neither stored nor rejected "
        f"(e.g. {sorted(missing)[:3]})")
    cli.accounted(run, scenario)


@pytest.mark.parametrize(
    "access",
    ["standard", "feed"])
def test_a_split_run_accounts_for_every_fetched_record(
    serve: Serve, dsn: str, access: str
) -> None:
    """Parallel readers over split ranges: on the standard endpoint (which cannot stop at a
    range's floor) readers fetch events outside their range; those must be counted too."""
    stream = Stream(make_events(3000, seed=6))
    server = serve(Service(stream, stream_access=_standard_or_feed(access)))
    scenario = f"split run over the {access} endpoint"

    run = cli.ingest(server, dsn, workers=4)

    cli.ok(run, scenario)
    h.assert_exact_set(dsn, stream.ids(), scenario)
    cli.accounted(run, scenario)


class FeedIgnoringBounds(Service):
    """A feed that serves from the cursor (or the top) whatever `since` and `until` say."""

    def feed_page(self, req: Request, start: int, limit: int, since: int | None,
                  until: int | None) -> PageOut:
        return self.stream.page(start, limit)


def test_records_served_outside_a_readers_range_are_accounted(serve: Serve, dsn: str) -> None:
    stream = Stream(make_events(3000, seed=7))
    server = serve(FeedIgnoringBounds(stream))
    scenario = "feed that ignores since and until"

    run = cli.ingest(server, dsn, workers=4)

    cli.ok(run, scenario)
    h.assert_exact_set(dsn, stream.ids(), scenario)
    cli.accounted(run, scenario)


def test_two_different_bad_records_sharing_an_id_are_two_rejections(
    serve: Serve, dsn: str
) -> None:
    events = make_events(300, seed=8)
    first = record_entry("shared-bad-id", events[100].ts_ms, timestamp="not a time")
    second = record_entry("shared-bad-id", events[200].ts_ms, timestamp=None, name="other")
    stream = Stream([*events[:100], first, *events[100:200], second, *events[200:]])
    server = serve(Service(stream, stream_access=False))
    scenario = "two different invalid records with one id"

    run = cli.ingest(server, dsn)

    cli.ok(run, scenario)
    h.assert_exact_set(dsn, {e.id for e in events}, scenario)
    rows = h.query(dsn, "SELECT reason FROM rejected_events WHERE raw LIKE %s",
                   ("%shared-bad-id%",))
    assert len(rows) == 2 and all(str(r[0]).strip() for r in rows), (
        f"{scenario}: expected two rejected rows with reasons, got {rows}")
    cli.accounted(run, scenario)
    verify = cli.command(server, dsn, "verify")
    assert verify.returncode == 0, f"{scenario}: verify\n{verify.describe()}"
