"""`datasync demo`: the first command a new user runs."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated

import typer

from ..demo import run_demo
from ..display import make_reporter, package_logs_to
from ..errors import ExitCode, InterruptedRunError
from ..runtime import tuned_for_ingest
from ..sink import check_dsn
from .funnel import command
from .options import LogFormat, Workers, build_settings
from .signals import StopOnSignal

Events = Annotated[
    int, typer.Option("--events", metavar="N", help="Events the local simulator serves.")
]
LatencyMs = Annotated[
    float, typer.Option("--latency-ms", metavar="MS", help="Simulated latency per request.")
]
DemoDatabase = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="DATABASE_URL",
        metavar="DSN",
        help="Use this database instead of one of its own. It must be new, empty, or an "
        "earlier demo's (whose tables are kept); any other is refused.",
        show_default="datasync_demo on 127.0.0.1:5432, else in a private cluster",
    ),
]


@command
def demo(
    events: Events = 200_000,
    latency_ms: LatencyMs = 100.0,
    workers: Workers = None,
    database_url: DemoDatabase = None,
    log_format: LogFormat = None,
) -> None:
    """Ingest from a local simulator, then verify.

    Uses a database of its own (datasync_demo on 127.0.0.1:5432, or a private cluster under
    .datasync/pg); it writes only into a database it created or one that was empty.
    """
    settings = build_settings(workers=workers, log_format=log_format)
    if database_url:
        check_dsn(database_url)
    reporter = make_reporter(settings.log_format, settings.progress, settings.secrets())
    stop = threading.Event()
    with StopOnSignal(stop) as signals, tuned_for_ingest(), package_logs_to(reporter):
        result = run_demo(
            settings,
            reporter,
            stop,
            events=events,
            latency_ms=latency_ms,
            configured_db=database_url,
            workdir=Path.cwd(),
        )
    reporter.finish(result.outcome.summary)
    if signals.signum is not None:
        raise InterruptedRunError(signals.signum)
    reporter.log(("verify ok: " if result.verdict.ok else "verify FAILED: ")
                 + result.verdict.explain())
    if not result.verdict.ok:
        raise typer.Exit(ExitCode.FAILED)
    reporter.log("ingestion complete")
