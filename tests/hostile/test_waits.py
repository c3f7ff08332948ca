"""No unbounded wait and no unbounded memory (issue 10, item 6).

Server-supplied delays are validated: far-future values never crash, and a delay above the cap
(`--max-wait` / INGEST_MAX_WAIT, default 15 minutes) ends the run with exit 3 and a message
instead of sleeping. Every request has a deadline for the whole exchange (`--request-timeout`
/ INGEST_REQUEST_TIMEOUT), and a body has a size cap after decompression (`--max-body-mb` /
INGEST_MAX_BODY_MB, default 64).
"""

from __future__ import annotations

import re
import time
import zlib
from functools import lru_cache

import pytest
from e2e import harness as h

from . import cli
from .conftest import Serve
from .server import HostileServer
from .service import Reply, Request, Service
from .stream import Stream, make_events

pytestmark = pytest.mark.e2e

# A run that has nothing left to do but wait: how long after the last request we give it.
IDLE_S = 6.0
SAYS_WAIT = r"wait|retry|rate|limit|delay|cap"
BOMB_MB = 200
RSS_LIMIT_MB = 300


class Delaying(Service):
    """Answers the first `times` requests to `route` with `reply()`, then behaves."""

    def __init__(self, stream: Stream, route: str, reply: Reply, times: int = 10**6,
                 **kwargs: bool) -> None:
        super().__init__(stream, **kwargs)
        self.route, self.reply, self.times = route, reply, times

    def answer(self, req: Request) -> Reply:
        if req.route == self.route and req.number <= self.times and self.authorized(req):
            return self.reply
        return super().answer(req)

    def authorized(self, req: Request) -> bool:
        return req.headers.get("x-api-key") == self.api_key


def _idle(server: HostileServer, seconds: float = IDLE_S) -> cli.Watch:
    """Stop a child that has sent nothing for `seconds`: it is sleeping on a server's word."""
    def check() -> str | None:
        done = [r.ended for r in server.requests if r.ended is not None]
        if done and time.monotonic() - max(done) > seconds:
            return f"no request for {seconds:.0f} s: the run is waiting on the server's word"
        return None
    return check


def _too_many(headers: list[tuple[str, str]]) -> Reply:
    body = (b'{"error":"Too Many Requests","message":"Rate limit exceeded.",'
            b'"code":"RATE_LIMIT_EXCEEDED"}')
    return Reply(429, body, [("Content-Type", "application/json; charset=utf-8"), *headers])


DELAYS = {
    "Retry-After 1000000000": [("Retry-After", "1000000000")],
    "X-RateLimit-Reset 999999999": [("X-RateLimit-Limit", "10"),
                                    ("X-RateLimit-Remaining", "0"),
                                    ("X-RateLimit-Reset", "999999999")],
    "Retry-After in year 9999": [("Retry-After", "Fri, 31 Dec 9999 23:59:59 GMT")],
    "Retry-After 99999999999": [("Retry-After", "99999999999")],
}


@pytest.mark.parametrize("access", ["standard", "feed"])
@pytest.mark.parametrize("delay", list(DELAYS))
def test_a_delay_above_the_cap_ends_the_run_instead_of_sleeping(
    serve: Serve, dsn: str, delay: str, access: str
) -> None:
    stream = Stream(make_events(300, seed=21))
    route = "events" if access == "standard" else "feed"
    server = serve(Delaying(stream, route, _too_many(DELAYS[delay]),
                            stream_access=access == "feed"))
    scenario = f"429 with {delay} on the {access} endpoint"

    run = cli.ingest(server, dsn, timeout=40, watch=_idle(server))

    cli.no_crash(run, scenario)
    assert run.returncode == 3, f"{scenario}: expected exit 3\n{run.describe()}"
    line = cli.error_line(run, scenario)
    assert re.search(SAYS_WAIT, line, re.IGNORECASE), f"{scenario}: message: {line}"


def test_a_spent_window_with_a_huge_reset_ends_the_run(serve: Serve, dsn: str) -> None:
    """A 200 that says the window is spent and resets in 31 years."""
    stream = Stream(make_events(300, seed=22))
    headers = [("X-RateLimit-Limit", "10"), ("X-RateLimit-Remaining", "0"),
               ("X-RateLimit-Reset", "999999999")]

    class SpentWindow(Service):
        def events(self, req: Request) -> Reply:
            reply = super().events(req)
            reply.headers += headers
            return reply

    server = serve(SpentWindow(stream, stream_access=False))
    scenario = "X-RateLimit-Remaining 0 with X-RateLimit-Reset 999999999"

    run = cli.ingest(server, dsn, timeout=40, watch=_idle(server))

    cli.no_crash(run, scenario)
    assert run.returncode == 3, f"{scenario}: expected exit 3\n{run.describe()}"
    line = cli.error_line(run, scenario)
    assert re.search(SAYS_WAIT, line, re.IGNORECASE), f"{scenario}: message: {line}"


def test_the_wait_cap_is_a_setting(serve: Serve, dsn: str) -> None:
    stream = Stream(make_events(300, seed=23))
    server = serve(Delaying(stream, "events", _too_many([("Retry-After", "3600")]),
                            stream_access=False))
    scenario = "Retry-After 3600 with --max-wait 5"

    run = cli.ingest(server, dsn, "--max-wait", "5", timeout=40, watch=_idle(server))

    assert run.returncode == 3, f"{scenario}: expected exit 3\n{run.describe()}"
    line = cli.error_line(run, scenario)
    assert re.search(SAYS_WAIT, line, re.IGNORECASE), f"{scenario}: message: {line}"


@pytest.mark.parametrize("value", ["-5", "soon", "1", "0"])
def test_a_short_or_meaningless_delay_is_waited_out(serve: Serve, dsn: str, value: str) -> None:
    stream = Stream(make_events(300, seed=24))
    server = serve(Delaying(stream, "events", _too_many([("Retry-After", value)]), times=2,
                            stream_access=False))
    scenario = f"Retry-After {value!r} twice"

    run = cli.ingest(server, dsn, timeout=40)

    cli.ok(run, scenario)
    h.assert_exact_set(dsn, stream.ids(), scenario)
    assert run.elapsed_s < 20, f"{scenario}: took {run.elapsed_s:.0f} s"


def test_a_trickling_answer_is_cut_off_by_the_request_deadline(serve: Serve, dsn: str) -> None:
    """The first answer sends its body one byte a second: each read is quick, the whole is
    not. With INGEST_REQUEST_TIMEOUT=3 that request is abandoned and retried."""
    stream = Stream(make_events(300, seed=25))

    class Trickling(Service):
        def events(self, req: Request) -> Reply:
            reply = super().events(req)
            if req.number == 1:
                reply.trickle_s = 1.0
            return reply

    server = serve(Trickling(stream, stream_access=False))
    scenario = "an answer trickling one byte a second"

    def trickling_too_long() -> str | None:
        asked = [r for r in server.requests if r.route == "events"]
        if len(asked) == 1 and time.monotonic() - asked[0].started > 12:
            return "the trickling answer has been read for over 12 s, and nothing else asked"
        return None

    run = cli.ingest(server, dsn, env={"INGEST_REQUEST_TIMEOUT": "3"}, timeout=40,
                     watch=trickling_too_long)

    cli.ok(run, scenario)
    h.assert_exact_set(dsn, stream.ids(), scenario)
    first, retry = [r for r in server.requests if r.route == "events"][:2]
    assert retry.started - first.started < 10, (
        f"{scenario}: the trickling request was abandoned only after "
        f"{retry.started - first.started:.0f} s")


@lru_cache(maxsize=1)
def _gzip_bomb() -> bytes:
    """A page whose one record inflates to BOMB_MB megabytes (about 200 KB on the wire)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [packer.compress(b'{"data":[{"id":"bomb-1","timestamp":1769541612369,'
                             b'"type":"click","properties":{"p":"')]
    chunk = b"A" * (1 << 20)
    parts += [packer.compress(chunk) for _ in range(BOMB_MB)]
    parts.append(packer.compress(b'"}}],"pagination":{"limit":100,"hasMore":false,'
                                 b'"nextCursor":null},"meta":{"total":301}}'))
    parts.append(packer.flush())
    return b"".join(parts)


def test_a_gzip_bomb_is_refused_without_the_memory_to_inflate_it(serve: Serve, dsn: str) -> None:
    stream = Stream(make_events(300, seed=26))
    bomb = Reply(200, _gzip_bomb(), [("Content-Type", "application/json; charset=utf-8"),
                                     ("Content-Encoding", "gzip")])
    server = serve(Delaying(stream, "events", bomb, times=1, stream_access=False))
    scenario = f"a gzip body inflating to {BOMB_MB} MB"

    run = cli.ingest(server, dsn, timeout=50)

    cli.no_crash(run, scenario)
    assert run.max_rss_mb < RSS_LIMIT_MB, (
        f"{scenario}: the process grew to {run.max_rss_mb:.0f} MB\n{run.describe()}")
    if run.returncode == 0:
        h.assert_exact_set(dsn, stream.ids(), scenario)
    else:
        assert run.returncode == 3, f"{scenario}: expected exit 0 or 3\n{run.describe()}"
        line = cli.error_line(run, scenario)
        assert re.search(r"large|size|MB|bytes|cap", line, re.IGNORECASE), line
