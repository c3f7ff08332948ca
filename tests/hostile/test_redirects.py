"""Secrets stay with their origin (issue 10, item 1).

X-API-Key and X-Stream-Token go only to the configured API's scheme, host and port. A redirect
within that origin may be followed; one to another origin is not, and ends the run with exit 3
and a message naming where it pointed. Any URL the tool prints has its userinfo redacted.
"""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from e2e import harness as h

from . import cli
from .conftest import Serve
from .server import HostileServer
from .service import EVENTS_PATH, FEED_PATH, STREAM_ACCESS_PATH, Reply, Request, Service
from .stream import Stream, make_events

pytestmark = pytest.mark.e2e

PATHS = {"events": EVENTS_PATH, "feed": FEED_PATH, "stream_access": STREAM_ACCESS_PATH}
THIEF_PASSWORD = "thief-pw-0451"
USERINFO_PASSWORD = "userinfo-pw-8086"


class RedirectingService(Service):
    """Answers every request to `route` with a redirect to `location` (the query kept, plus
    `moved=1`, which the redirected request is then served for)."""

    def __init__(self, stream: Stream, route: str, status: int, location: str,
                 **kwargs: bool) -> None:
        super().__init__(stream, **kwargs)
        self.route, self.status, self.location = route, status, location

    def answer(self, req: Request) -> Reply:
        if req.route == self.route and "moved" not in req.query:
            query = urlencode({**req.query, "moved": "1"})
            return Reply(self.status, b"", [("Location", f"{self.location}?{query}"),
                                            ("Content-Type", "text/plain")])
        return super().answer(req)


def _leaks(elsewhere: HostileServer, secrets: set[str]) -> list[str]:
    """Every place a secret arrived at the other origin: a header, the path or the query."""
    found = []
    for req in elsewhere.requests:
        for name, value in req.headers.items():
            if name in ("x-api-key", "x-stream-token") or any(s in value for s in secrets):
                found.append(f"{req.method} {req.path}: header {name}")
        if any(s in req.path or s in str(req.query) for s in secrets):
            found.append(f"{req.method} {req.path}: in the URL")
    return sorted(set(found))


@pytest.mark.parametrize("status", [302, 307])
@pytest.mark.parametrize("route", ["events", "stream_access", "feed"])
def test_redirect_to_another_origin_keeps_the_secrets_and_stops(
    serve: Serve, dsn: str, route: str, status: int
) -> None:
    stream = Stream(make_events(600))
    elsewhere = serve(Service(stream, api_key=None, check_token=False))
    # The events redirect also carries userinfo, which the message must not show.
    userinfo = f"thief:{THIEF_PASSWORD}@" if route == "events" else ""
    location = f"http://{userinfo}{elsewhere.netloc}{PATHS[route]}"
    origin = serve(RedirectingService(stream, route, status, location,
                                      stream_access=route != "events"))
    scenario = f"{status} from {route} to {elsewhere.netloc}"

    run = cli.ingest(origin, dsn, timeout=40)

    secrets = {origin.service.api_key or "", *origin.service.tokens()} - {""}
    leaks = _leaks(elsewhere, secrets)
    assert not leaks, f"{scenario}: secrets arrived at the other origin: {leaks}"
    assert run.returncode == 3, f"{scenario}: expected exit 3\n{run.describe()}"
    line = cli.error_line(run, scenario)
    assert elsewhere.netloc in line, f"{scenario}: the message does not name where: {line}"
    shown = [s for s in (*secrets, THIEF_PASSWORD) if s in run.output]
    assert not shown, f"{scenario}: printed a secret: {shown}\n{run.describe()}"


@pytest.mark.parametrize("status", [302, 307])
@pytest.mark.parametrize("route", ["events", "feed"])
def test_redirect_within_the_origin_is_followed(
    serve: Serve, dsn: str, route: str, status: int
) -> None:
    stream = Stream(make_events(600))
    # Without stream access every page comes from /events; with it, most from the feed.
    service = RedirectingService(stream, route, status, "", stream_access=route == "feed")
    server = serve(service)
    service.location = f"{server.root}{PATHS[route]}"
    scenario = f"{status} from {route} to the same origin"

    run = cli.ingest(server, dsn)

    cli.ok(run, scenario)
    h.assert_exact_set(dsn, stream.ids(), scenario)
    moved = [r for r in server.requests if r.route == route and "moved" in r.query]
    assert moved and all(r.headers.get("x-api-key") == server.service.api_key for r in moved), (
        f"{scenario}: the redirect was not followed with the key")


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_userinfo_in_the_api_url_is_never_printed(
    serve: Serve, dsn: str, log_format: str
) -> None:
    stream = Stream(make_events(300))
    server = serve(Service(stream))
    with_userinfo = f"http://reader:{USERINFO_PASSWORD}@{server.netloc}/api/v1"
    nowhere = f"http://reader:{USERINFO_PASSWORD}@127.0.0.1:{h.free_port()}/api/v1"
    key = server.service.api_key or ""
    runs = {
        "ingest": cli.run_cli(h.ingest_args(with_userinfo, key, dsn, "--log-format", log_format,
                                            "--no-progress", "--page-size", "100")),
        "ingest, wrong key": cli.run_cli(h.ingest_args(with_userinfo, "wrong-key", dsn,
                                                       "--log-format", log_format)),
        "ingest, unreachable": cli.run_cli(h.ingest_args(nowhere, key, dsn,
                                                         "--log-format", log_format)),
        "verify": cli.run_cli(h.datasync("verify", "--api-url", with_userinfo, "--api-key", key,
                                         "--database-url", dsn)),
        "verify --json": cli.run_cli(h.datasync("verify", "--json", "--api-url", with_userinfo,
                                                "--api-key", key, "--database-url", dsn)),
    }
    expected = {"ingest": 0, "ingest, wrong key": 3, "ingest, unreachable": 3, "verify": 0,
                "verify --json": 0}
    problems = [f"{name}: exit {run.returncode}, expected {expected[name]}: {run.stderr[-400:]}"
                for name, run in runs.items() if run.returncode != expected[name]]
    problems += [f"{name}: the password in --api-url was printed"
                 for name, run in runs.items() if USERINFO_PASSWORD in run.output]
    assert not problems, "\n".join(problems)
