"""`data` is what was served, and a different version of an id is kept (issue 10, items 3-4).

Numbers beyond double precision or range are stored exactly (JSONB holds arbitrary-precision
numerics) or rejected with a reason, never altered silently. A later copy of an id with other
content is kept (in `event_conflicts`, or in rejected_events with a reason starting
"conflicting version") and counted as `conflicts` by `status --json` and `verify --json`.
"""

from __future__ import annotations

import gzip
import json
import time
import zlib
from typing import Any

import psycopg2.errors
import pytest
from e2e import harness as h

from . import cli
from .conftest import Serve
from .service import Reply, Request, Service
from .stream import Stream, make_events, raw_entry, record_entry

pytestmark = pytest.mark.e2e

NUMBERS = [
    "1e-400",
    "0.1000000000000000055511151231257827",
    "1e400",
    "123456789012345678901234567890.5",
]


@pytest.mark.parametrize("number", NUMBERS)
def test_a_number_beyond_a_double_is_stored_exactly_or_rejected(
    serve: Serve, dsn: str, number: str
) -> None:
    events = make_events(200, seed=41)
    text = (f'{{"id":"number-1","timestamp":{events[60].ts_ms},"type":"click",'
            f'"properties":{{"x":{number}}}}}')
    stream = Stream([*events[:60], raw_entry("number-1", events[60].ts_ms, text), *events[60:]])
    server = serve(Service(stream, stream_access=False))
    scenario = f"a property holding {number}"

    run = cli.ingest(server, dsn)

    cli.ok(run, scenario)
    stored = h.query(dsn, "SELECT data = %s::jsonb, data->'properties'->>'x' "
                     "FROM ingested_events WHERE id = 'number-1'", (text,))
    rejected = h.query(dsn, "SELECT reason FROM rejected_events WHERE event_id = 'number-1'")
    if stored:
        same, shown = stored[0]
        assert same, f"{scenario}: stored as {shown[:60]}, not as served"
    else:
        assert rejected and str(rejected[0][0]).strip(), (
            f"{scenario}: neither stored nor rejected with a reason")
    h.assert_exact_set(dsn, {e.id for e in events} | ({"number-1"} if stored else set()),
                       scenario)


def conflict_versions(dsn: str) -> list[Any]:
    """Kept versions of ids already stored: rows of event_conflicts, if that table exists,
    plus rejected rows whose reason starts with "conflicting version"."""
    try:
        kept = [row[0] for row in h.query(dsn, "SELECT data FROM event_conflicts")]
    except psycopg2.errors.UndefinedTable:
        kept = []
    kept += [json.loads(row[0]) for row in h.query(
        dsn, "SELECT raw FROM rejected_events WHERE reason LIKE 'conflicting version%%'")]
    return kept


def _canonical(record: Any) -> str:
    return json.dumps(record, sort_keys=True)


def test_a_different_later_version_of_an_id_is_kept_and_counted(serve: Serve, dsn: str) -> None:
    events = make_events(400, seed=42)
    original = events[50]
    ts = {"timestamp": original.ts_ms}
    assert original.record is not None
    second = record_entry(original.id, original.ts_ms, **{**original.record, **ts,
                                                          "properties": {"page": "/changed"}})
    third = record_entry(original.id, original.ts_ms, **{**original.record, **ts,
                                                         "type": "purchase"})
    same = events[80]
    assert same.record is not None
    same.record["timestamp"] = same.ts_ms  # one spelling on every endpoint: a plain duplicate
    again = record_entry(same.id, same.ts_ms, **same.record)
    # The copies come about a page later, as the field reports saw them.
    entries = list(events)
    entries.insert(170, second)
    entries.insert(260, third)
    entries.insert(200, again)
    stream = Stream(entries)
    stream.total = str(len(events))  # meta.total counts distinct ids
    server = serve(Service(stream, stream_access=False))
    scenario = "two later versions of one id with other content"

    run = cli.ingest(server, dsn)

    cli.ok(run, scenario)
    h.assert_exact_set(dsn, {e.id for e in events}, scenario)
    first = h.query(dsn, "SELECT data FROM ingested_events WHERE id = %s", (original.id,))
    assert first[0][0] == original.served(feed=False), f"{scenario}: the first version changed"
    kept = sorted(_canonical(v) for v in conflict_versions(dsn))
    served = sorted(_canonical(e.served(feed=False)) for e in (second, third))
    assert kept == served, f"{scenario}: kept versions {kept} != differing copies {served}"
    cli.accounted(run, scenario)
    status = json.loads(cli.command(server, dsn, "status", "--json").stdout)
    verify = json.loads(cli.command(server, dsn, "verify", "--json").stdout)
    assert status.get("conflicts") == 2 and verify.get("conflicts") == 2, (
        f"{scenario}: status says {status.get('conflicts')}, verify {verify.get('conflicts')}")


class SlowToken(Service):
    """Answers the token request after a second, so the first page comes from the standard
    endpoint (ISO timestamps) and the feed (epoch ms) then reads its last event again."""

    def stream_access(self, req: Request) -> Reply:
        time.sleep(1.0)
        return super().stream_access(req)


def test_one_event_read_through_both_endpoints_is_no_conflict(serve: Serve, dsn: str) -> None:
    events = make_events(600, seed=43)
    for e in events[95:105]:
        e.iso_on_standard = True  # the page boundary is spelled differently by the feed
    stream = Stream(events)
    server = serve(SlowToken(stream))
    scenario = "the same events through the standard endpoint and the feed"

    run = cli.ingest(server, dsn)

    cli.ok(run, scenario)
    h.assert_exact_set(dsn, stream.ids(), scenario)
    routes = [r.route for r in server.requests if r.route in ("events", "feed")]
    assert {"events", "feed"} <= set(routes), f"{scenario}: asked only {set(routes)}"
    assert not conflict_versions(dsn), f"{scenario}: a re-read was kept as a conflict"
    status = json.loads(cli.command(server, dsn, "status", "--json").stdout)
    assert status.get("conflicts", 0) == 0, f"{scenario}: status {status.get('conflicts')}"


def _deflate(body: bytes, wbits: int) -> bytes:
    packer = zlib.compressobj(6, zlib.DEFLATED, wbits)
    return packer.compress(body) + packer.flush()


_ENCODINGS = {
    "gzip": lambda body: gzip.compress(body),
    "x-gzip": lambda body: gzip.compress(body),
    "deflate": lambda body: _deflate(body, zlib.MAX_WBITS),  # with its zlib header
    "deflate ": lambda body: _deflate(body, -zlib.MAX_WBITS),  # raw, as some servers send
    "deflate, gzip": lambda body: gzip.compress(_deflate(body, zlib.MAX_WBITS)),
}


@pytest.mark.parametrize("coding", list(_ENCODINGS))
def test_answers_compressed_by_a_proxy_are_read_whole(serve: Serve, dsn: str,
                                                      coding: str) -> None:
    """A proxy that compresses every answer, in each form servers use: the exact set."""
    stream = Stream(make_events(900, seed=47))

    class Compressing(Service):
        def answer(self, req: Request) -> Reply:
            reply = super().answer(req)
            if not reply.body:
                return reply
            headers = [(k, v) for k, v in reply.headers if k.lower() != "content-length"]
            return Reply(reply.status, _ENCODINGS[coding](reply.body),
                         [*headers, ("Content-Encoding", coding.strip())], reply.trickle_s)

    server = serve(Compressing(stream))
    run = cli.ingest(server, dsn, page_size=100)
    cli.ok(run, f"answers encoded as {coding!r}")
    h.assert_exact_set(dsn, stream.ids(), f"answers encoded as {coding!r}")
