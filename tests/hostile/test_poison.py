"""One record never wedges a run (issue 10, item 7).

Whatever a single record contains, it is stored exactly or goes to rejected_events with its
reason, the rest of its page is stored, and the run completes; a bad nextCursor or meta.total is
a protocol fault of its page, never an "unexpected" crash. A rerun is not wedged either.
"""

from __future__ import annotations

import random

import pytest
from e2e import harness as h

from . import cli
from .conftest import Serve
from .service import Request, Service
from .stream import PageOut, Stream, make_events, raw_entry

pytestmark = pytest.mark.e2e

AT = 150  # the poison sits in the second page of 100
TS = "1769541000000"


def _record(event_id: str, properties: str) -> str:
    return f'{{"id":"{event_id}","timestamp":{TS},"type":"click","properties":{properties}}}'


# Random, so PostgreSQL cannot compress it below its index row limit (about 2.7 kB).
LONG_ID = "long-id-" + random.Random(35).randbytes(1496).hex()
POISON = {
    "nested 10,000 levels": ("deep-10000", _record("deep-10000", "[" * 10_000 + "]" * 10_000)),
    "nested 450 levels": ("deep-450", _record("deep-450", '{"a":' * 450 + "null" + "}" * 450)),
    "an integer of 5,000 digits": ("bigint-5000", _record("bigint-5000",
                                                          '{"n":' + "9" * 5000 + "}")),
    "an id of 3,000 characters": (LONG_ID, _record(LONG_ID, '{"page":"/long"}')),
}


def _poisoned(event_id: str, text: str, seed: int) -> tuple[Stream, set[str]]:
    events = make_events(300, seed=seed)
    poison = raw_entry(event_id, int(TS), text)
    return Stream([*events[:AT], poison, *events[AT:]]), {e.id for e in events}


def _kept_or_rejected(dsn: str, event_id: str, text: str, scenario: str) -> None:
    """The record is stored exactly as served, or rejected with a reason; not lost."""
    stored = h.query(dsn, "SELECT data = %s::jsonb FROM ingested_events WHERE id = %s",
                     (text, event_id))
    rejected = h.query(dsn, "SELECT reason FROM rejected_events WHERE event_id = %s "
                       "OR left(raw, 200) LIKE %s", (event_id[:200], f"%{event_id[:100]}%"))
    if stored:
        assert stored[0][0], f"{scenario}: the record was stored with other content"
        assert not rejected, f"{scenario}: the record was both stored and rejected"
        return
    assert len(rejected) == 1 and str(rejected[0][0]).strip(), (
        f"{scenario}: the record is neither stored nor rejected with a reason: {rejected}")


def _complete_and_rerun(server_run: cli.Run, rerun: cli.Run, scenario: str) -> None:
    cli.no_crash(server_run, scenario)
    cli.ok(server_run, scenario)
    cli.no_crash(rerun, scenario + ", rerun")
    cli.ok(rerun, scenario + ", rerun")


@pytest.mark.parametrize("poison", list(POISON))
def test_a_poison_record_is_rejected_and_the_rest_stored(
    serve: Serve, dsn: str, poison: str
) -> None:
    event_id, text = POISON[poison]
    stream, valid = _poisoned(event_id, text, seed=31)
    server = serve(Service(stream, stream_access=False))
    scenario = f"a record {poison}"

    run = cli.ingest(server, dsn, watch=cli.repeats(server))
    rerun = cli.ingest(server, dsn, watch=cli.repeats(server))

    _complete_and_rerun(run, rerun, scenario)
    stored = set(h.stored_ids(dsn)) - {event_id}
    assert stored == valid, f"{scenario}: {h.describe_difference(valid, list(stored))}"
    _kept_or_rejected(dsn, event_id, text, scenario)
    cli.accounted(run, scenario)


class BadCursorOnce(Service):
    """The first page's nextCursor carries a character no cursor (and no TEXT column) may."""

    def __init__(self, stream: Stream, tail: str) -> None:
        super().__init__(stream, stream_access=False)
        self.tail = tail

    def standard_page(self, req: Request, start: int, limit: int) -> PageOut:
        page = super().standard_page(req, start, limit)
        if req.number == 1 and page.next_cursor:
            page.next_cursor += self.tail
        return page


@pytest.mark.parametrize("tail", ["\u0000", "\ud800"], ids=["NUL", "lone surrogate"])
def test_a_bad_next_cursor_is_a_protocol_fault_of_its_page(
    serve: Serve, dsn: str, tail: str
) -> None:
    stream = Stream(make_events(300, seed=32))
    server = serve(BadCursorOnce(stream, tail))
    scenario = f"nextCursor holding {tail!a}"

    run = cli.ingest(server, dsn, watch=cli.repeats(server))
    rerun = cli.ingest(server, dsn, watch=cli.repeats(server))

    _complete_and_rerun(run, rerun, scenario)
    h.assert_exact_set(dsn, stream.ids(), scenario)


@pytest.mark.parametrize("total", [
    "NaN",
    "1e400",
    "1e20",
])
def test_a_meaningless_total_is_treated_as_unknown(serve: Serve, dsn: str, total: str) -> None:
    stream = Stream(make_events(300, seed=33))
    stream.total = total
    server = serve(Service(stream, stream_access=False))
    scenario = f"meta.total {total}"

    run = cli.ingest(server, dsn, watch=cli.repeats(server))
    rerun = cli.ingest(server, dsn, watch=cli.repeats(server))

    _complete_and_rerun(run, rerun, scenario)
    h.assert_exact_set(dsn, stream.ids(), scenario)


@pytest.mark.parametrize("access", ["standard", "feed"])
def test_a_byte_order_mark_before_every_body_is_read_past(
    serve: Serve, dsn: str, access: str
) -> None:
    stream = Stream(make_events(300, seed=34))
    server = serve(Service(stream, stream_access=access == "feed", bom=True))
    scenario = f"a UTF-8 BOM before every body ({access})"

    run = cli.ingest(server, dsn, watch=cli.repeats(server))
    rerun = cli.ingest(server, dsn, watch=cli.repeats(server))

    _complete_and_rerun(run, rerun, scenario)
    h.assert_exact_set(dsn, stream.ids(), scenario)
