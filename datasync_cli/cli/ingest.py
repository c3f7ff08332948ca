"""`datasync ingest`: parse, run the pipeline, map the outcome to an exit status."""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType
from typing import Annotated

import typer

from ..errors import Interrupted
from ..pipeline import Ingest, summary
from ..progress import make_reporter
from ..settings import secret_values
from .common import ApiKey, ApiUrl, DatabaseUrl, LogFormatOpt, build_settings, guarded


class StopOnSignal:
    """SIGINT/SIGTERM raise the stop flag once; a second signal ends the process at once."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:
            os._exit(128 + signum)  # the database transaction in flight rolls back by itself
        self.signum = signum
        self.stop.set()

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]


def register(app: typer.Typer) -> None:
    @app.command()
    def ingest(
        database_url: DatabaseUrl = "postgresql://postgres:postgres@localhost:5432/ingestion",
        api_url: ApiUrl = None,
        api_key: ApiKey = None,
        token: Annotated[
            str | None,
            typer.Option(
                "--token",
                envvar="STREAM_TOKEN",
                help="Stream token for the fast feed endpoint. Without it, ingest obtains one "
                "itself when the API key allows, else reads the rate-limited standard endpoint.",
                show_default=False,
            ),
        ] = None,
        workers: Annotated[
            int | None,
            typer.Option(
                "--workers",
                envvar="INGEST_WORKERS",
                help="Parallel readers over disjoint time ranges (1-64). Default: 8.",
            ),
        ] = None,
        page_size: Annotated[
            int,
            typer.Option("--page-size", envvar="INGEST_PAGE_SIZE", help="Events per request."),
        ] = 5000,
        log_format: LogFormatOpt = None,
        no_progress: Annotated[
            bool, typer.Option("--no-progress", help="No live progress display.")
        ] = False,
    ) -> None:
        """Migrate, resume from the checkpoint and ingest until the source is exhausted."""
        secrets = secret_values(api_key, token, database_url)

        def body() -> None:
            settings = build_settings(
                database_url=database_url,
                api_url=api_url,
                api_key=api_key,
                token=token,
                workers=workers,
                page_size=page_size,
                log_format=log_format,
                progress=not no_progress,
            )
            settings.require_api()
            reporter = make_reporter(settings.log_format, settings.progress, settings.secrets())
            stop = threading.Event()
            with StopOnSignal(stop) as signals:
                outcome = Ingest(settings, reporter, stop).run()
            reporter.finish(summary(outcome))
            if signals.signum is not None:
                reporter.log("stopped by signal; checkpoint saved, rerun to continue",
                             level="warning", signal=signals.signum)
                raise Interrupted(signals.signum)
            if not outcome.completed:
                raise typer.Exit(1)
            reporter.log("ingestion complete")

        guarded(body, secrets)
