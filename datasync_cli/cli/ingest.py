"""`datasync ingest`: parse, run the pipeline, map the outcome to an exit status."""

from __future__ import annotations

import threading

import typer

from ..display import make_reporter, package_logs_to
from ..errors import ExitCode, InterruptedRunError
from ..pipeline import run_ingest
from ..runtime import tuned_for_ingest
from ..settings import DEFAULTS
from .funnel import command
from .options import (
    ApiKey,
    ApiUrl,
    DatabaseUrl,
    LogFormat,
    MaxBodyMb,
    MaxWait,
    NoProgress,
    PageSize,
    RequestTimeout,
    Token,
    Workers,
    build_settings,
)
from .signals import StopOnSignal


@command
def ingest(
    database_url: DatabaseUrl = DEFAULTS.database_url,
    api_url: ApiUrl = None,
    api_key: ApiKey = None,
    token: Token = None,
    workers: Workers = None,
    page_size: PageSize = DEFAULTS.page_size,
    log_format: LogFormat = None,
    no_progress: NoProgress = False,
    max_wait: MaxWait = DEFAULTS.max_wait_s,
    request_timeout: RequestTimeout = DEFAULTS.request_timeout_s,
    max_body_mb: MaxBodyMb = DEFAULTS.max_body_mb,
) -> None:
    """Ingest every event, resuming from the checkpoints.

    Migrates the schema first, then reads until the source is exhausted and logs
    `ingestion complete`. Stop it at any time; the next run continues where it stopped.
    """
    settings = build_settings(
        database_url=database_url,
        api_url=api_url,
        api_key=api_key,
        token=token,
        workers=workers,
        page_size=page_size,
        log_format=log_format,
        progress=not no_progress,
        max_wait=max_wait,
        request_timeout=request_timeout,
        max_body_mb=max_body_mb,
    )
    settings.require_api()
    reporter = make_reporter(settings.log_format, settings.progress, settings.secrets())
    stop = threading.Event()
    with StopOnSignal(stop) as signals, tuned_for_ingest(), package_logs_to(reporter):
        outcome = run_ingest(settings, reporter, stop)
    reporter.finish(outcome.summary)
    if signals.signum is not None:
        reporter.log("stopped by signal; checkpoint saved, rerun to continue",
                     level="warning", signal=signals.signum)
        raise InterruptedRunError(signals.signum)
    if not outcome.completed:
        raise typer.Exit(ExitCode.FAILED)
    reporter.log("ingestion complete")
