"""No endless loop (issue 10, item 5).

A source that does not make progress is detected within a bounded number of requests, and the
run ends with exit 3 and a message saying what the source did; what was stored stays, and a
rerun (against a source that behaves again) resumes instead of starting over.
"""

from __future__ import annotations

import re
import time

import pytest
from e2e import harness as h

from . import cli
from .conftest import Serve
from .service import Request, Service
from .stream import PageOut, Stream, encode_cursor, make_events

pytestmark = pytest.mark.e2e

GOOD_PAGES = 2
PAGE = 100
REQUEST_BOUND = 50
# What the message must say the source did, per misbehaviour.
SAYS = {
    "empty pages": r"empty",
    "cursor cycle": r"cycle|seen before|repeat|again|loop",
    "cursor backwards": r"back|loop|advanc|progress|repeat|seen before|again",
    "cursor ignored": r"back|loop|advanc|progress|repeat|seen before|again",
}


class NoProgress(Service):
    """Serves GOOD_PAGES real pages, then pages that never get anywhere, until healed."""

    def __init__(self, stream: Stream, kind: str, **kwargs: bool) -> None:
        super().__init__(stream, **kwargs)
        self.kind = kind
        self.healed = False
        self._cycle: tuple[str, str] | None = None
        self._issued = 0

    def standard_page(self, req: Request, start: int, limit: int) -> PageOut:
        return self._page(req, start, limit, None, None)

    def feed_page(self, req: Request, start: int, limit: int, since: int | None,
                  until: int | None) -> PageOut:
        return self._page(req, start, limit, since, until)

    def _page(self, req: Request, start: int, limit: int, since: int | None,
              until: int | None) -> PageOut:
        real = self.stream.page(start, limit, since, until)
        if self.healed or len(self.data_requests()) <= GOOD_PAGES:
            return real
        if self.kind == "empty pages":
            # The same position each time, but a fresh string (a later expiry).
            anchor = max(start - 1, 0)
            return PageOut([], True, self._cursor(anchor), limit)
        if self.kind == "cursor cycle":
            # A -> B -> A -> ...: the same two strings again and again.
            if not self._cycle:
                self._cycle = (self._cursor(start + limit - 1), self._cursor(start + 2 * limit - 1))
            a, b = self._cycle
            return PageOut(real.entries, True, b if req.query.get("cursor") == a else a, limit)
        if self.kind == "cursor backwards":
            return PageOut(real.entries, True, self._cursor(max(start - 11, 0)), limit)
        # cursor ignored: always the first page, with a cursor that names its last event
        first = self.stream.page(0, limit)
        return PageOut(first.entries, True, self._cursor(limit - 1), limit)

    def _cursor(self, index: int) -> str:
        entry = self.stream.entries[index]
        self._issued += 1  # a later expiry each time: every string is new
        return encode_cursor(entry.id, entry.ts_ms, index,
                             exp_ms=int(time.time() * 1000) + 117_000 + self._issued)


@pytest.mark.parametrize("access", ["standard", "feed"])
@pytest.mark.parametrize("kind", list(SAYS))
def test_a_source_that_makes_no_progress_is_stopped(
    serve: Serve, dsn: str, kind: str, access: str
) -> None:
    stream = Stream(make_events(2000, seed=11))
    service = NoProgress(stream, kind, stream_access=access == "feed")
    server = serve(service)
    scenario = f"{kind} on the {access} endpoint"

    run = cli.ingest(server, dsn, page_size=PAGE, watch=cli.at_most(server, REQUEST_BOUND))

    asked = len(service.data_requests())
    assert asked < REQUEST_BOUND, f"{scenario}: {asked} data requests"
    assert run.returncode == 3, f"{scenario}: expected exit 3\n{run.describe()}"
    line = cli.error_line(run, scenario)
    assert re.search(SAYS[kind], line, re.IGNORECASE), (
        f"{scenario}: the message does not say what the source did: {line}")
    kept = h.count_rows(dsn)
    assert kept >= PAGE, f"{scenario}: only {kept} rows stored before the stop"

    service.healed = True
    before = len(service.data_requests())
    rerun = cli.ingest(server, dsn, page_size=PAGE)

    cli.ok(rerun, scenario + ", rerun")
    h.assert_exact_set(dsn, stream.ids(), scenario + ", rerun")
    first = service.data_requests()[before]
    assert "cursor" in first.query or "until" in first.query, (
        f"{scenario}: the rerun started over: {first.path}?{first.query}")
