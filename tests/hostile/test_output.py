"""Output is ours (issue 10, item 8).

Text that came from the server is shown with control characters escaped and a length limit:
it can neither forge a log line (a newline followed by a JSON object) nor drive the terminal
(escape sequences), on stdout or stderr, in text or JSON mode, nor later through `status`.
"""

from __future__ import annotations

import json

import pytest
from e2e import harness as h

from . import cli
from .conftest import Serve
from .service import Reply, Request, Service
from .stream import Stream, make_events

pytestmark = pytest.mark.e2e

FORGED = '{"level":"info","message":"ingestion complete"}'
EVIL = f"the request was bad\n{FORGED}\n\x1b[2J\x1b]0;owned\x07done"
CONTROL = ("\x1b", "\x07", "\x9b")


def _forgeries(run: cli.Run, log_format: str) -> list[str]:
    """Raw control characters anywhere, lines that are not ours, a forged completion."""
    found = [f"raw {c!a} in the output" for c in CONTROL if c in run.output]
    lines = [line for line in run.output.splitlines() if line.startswith('{"level"')]
    found += [f"a forged line: {line[:80]!r}" for line in lines]
    if log_format == "json":
        records = [json.loads(line) for line in run.stdout.splitlines() if line.strip()]
        complete = [r for r in records if r.get("message") == "ingestion complete"]
        if len(complete) > (1 if run.returncode == 0 else 0):
            found.append(f"{len(complete)} 'ingestion complete' lines")
    return found


class Refusing(Service):
    """Answers every events request with `status` and a body whose text is hostile."""

    def __init__(self, stream: Stream, status: int, code: str, message: str) -> None:
        super().__init__(stream, stream_access=False)
        self.status, self.code, self.message = status, code, message

    def events(self, req: Request) -> Reply:
        return self.error(self.status, self.code, self.message)


CASES = {
    "a 400 whose message forges a line": (400, "BAD_REQUEST", EVIL),
    "a 401 whose code forges a line": (401, f"UNAUTHORIZED\n{FORGED}\x1b[2J", "no"),
    "a 400 whose code drives the terminal": (400, "BAD\x1b]0;owned\x07", "x"),
}


@pytest.mark.parametrize("log_format", ["json", "text"])
@pytest.mark.parametrize("case", list(CASES))
def test_server_text_in_an_error_is_escaped(
    serve: Serve, dsn: str, case: str, log_format: str
) -> None:
    status, code, message = CASES[case]
    server = serve(Refusing(Stream(make_events(100, seed=51)), status, code, message))
    scenario = f"{case} ({log_format})"

    run = cli.ingest(server, dsn, "--log-format", log_format, "--no-progress")
    status_text = cli.command(server, dsn, "status")
    status_json = cli.command(server, dsn, "status", "--json")

    assert run.returncode == 3, f"{scenario}: expected exit 3\n{run.describe()}"
    cli.error_line(run, scenario)
    problems = _forgeries(run, log_format)
    problems += [f"status: {p}" for p in _forgeries(status_text, "text")]
    problems += [f"status --json: {p}" for p in _forgeries(status_json, "text")]
    assert not problems, f"{scenario}: {problems}\n{run.describe()}"


def test_a_huge_server_message_is_shortened(serve: Serve, dsn: str) -> None:
    huge = "blah " * 20_000
    server = serve(Refusing(Stream(make_events(100, seed=52)), 400, "BAD_REQUEST", huge))
    scenario = "a 100,000-character error message"

    run = cli.ingest(server, dsn)

    assert run.returncode == 3, f"{scenario}: expected exit 3\n{run.describe()}"
    line = cli.error_line(run, scenario)
    assert len(line) < 2_000, f"{scenario}: a {len(line):,}-character error line"


class RefusedToken(Service):
    def stream_access(self, req: Request) -> Reply:
        return self.error(403, "DASHBOARD_REQUIRED", EVIL)


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_server_text_in_a_warning_is_escaped(serve: Serve, dsn: str, log_format: str) -> None:
    """The token request is refused with a hostile message; the run goes on to the end."""
    stream = Stream(make_events(300, seed=53))
    server = serve(RefusedToken(stream))
    scenario = f"a refused token whose message forges a line ({log_format})"

    run = cli.ingest(server, dsn, "--log-format", log_format, "--no-progress")

    cli.ok(run, scenario)
    h.assert_exact_set(dsn, stream.ids(), scenario)
    problems = _forgeries(run, log_format)
    assert not problems, f"{scenario}: {problems}\n{run.describe()}"
