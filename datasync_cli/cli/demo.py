"""`datasync demo`: the first command a new user runs."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated

import typer

from ..demo import run_demo
from ..errors import Interrupted
from ..pipeline import summary
from ..progress import make_reporter
from .common import LogFormatOpt, build_settings, guarded
from .ingest import StopOnSignal


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        events: Annotated[
            int, typer.Option("--events", help="Events the local simulator serves.")
        ] = 200_000,
        latency_ms: Annotated[
            float, typer.Option("--latency-ms", help="Simulated latency per request.")
        ] = 100.0,
        workers: Annotated[
            int | None, typer.Option("--workers", help="Parallel readers.")
        ] = None,
        database_url: Annotated[
            str | None,
            typer.Option(
                "--database-url",
                envvar="DATABASE_URL",
                help="Use this database instead of a local one (its tables are kept).",
            ),
        ] = None,
        log_format: LogFormatOpt = None,
    ) -> None:
        """Run a complete ingest from a local simulator into a local PostgreSQL, then verify."""

        def body() -> None:
            settings = build_settings(workers=workers, log_format=log_format)
            reporter = make_reporter(settings.log_format, settings.progress, settings.secrets())
            stop = threading.Event()
            with StopOnSignal(stop) as signals:
                result = run_demo(
                    settings,
                    reporter,
                    stop,
                    events=events,
                    latency_ms=latency_ms,
                    configured_db=database_url,
                    workdir=Path.cwd(),
                )
            reporter.finish(summary(result.outcome))
            if signals.signum is not None:
                raise Interrupted(signals.signum)
            reporter.log(("verify ok: " if result.verdict.ok else "verify FAILED: ")
                         + result.verdict.explain())
            if not result.verdict.ok:
                raise typer.Exit(1)
            reporter.log("ingestion complete")

        guarded(body)
