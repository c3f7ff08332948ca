"""Options shared by several commands, and the one way parsed options become Settings."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ..redact import redact_url
from ..settings import DEFAULTS, LOG_FORMATS, Settings, validate
from ..sink import check_dsn

DatabaseUrl = Annotated[
    str,
    typer.Option(
        "--database-url",
        envvar="DATABASE_URL",
        metavar="DSN",
        help="PostgreSQL DSN.",
        show_default=redact_url(DEFAULTS.database_url),
    ),
]
ApiUrl = Annotated[
    str | None,
    typer.Option(
        "--api-url", envvar="API_BASE_URL", metavar="URL", help="API base URL, ending in /api/v1."
    ),
]
ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="TARGET_API_KEY",
        metavar="KEY",
        help="API key sent as X-API-Key; the service answers 401 without one.",
        show_default=False,
    ),
]
Token = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="STREAM_TOKEN",
        metavar="TOKEN",
        help="Stream token for the fast feed endpoint. Without it, ingest obtains one itself "
        "when the API key allows, else reads the rate-limited standard endpoint.",
        show_default=False,
    ),
]
Workers = Annotated[
    int | None,
    typer.Option(
        "--workers",
        envvar="INGEST_WORKERS",
        metavar="N",
        help=f"Parallel readers over disjoint time ranges (1-{DEFAULTS.max_workers}).",
        show_default=str(DEFAULTS.workers),
    ),
]
PageSize = Annotated[
    int,
    typer.Option(
        "--page-size",
        envvar="INGEST_PAGE_SIZE",
        metavar="N",
        help=f"Events per request (1-{DEFAULTS.max_page_size}).",
    ),
]
LogFormat = Annotated[
    str | None,
    typer.Option(
        "--log-format",
        envvar="LOG_FORMAT",
        metavar="[" + "|".join(LOG_FORMATS) + "]",
        help="text (for people, Rich) or json (one object per line).",
        show_default="text on a terminal, else json",
    ),
]
MaxWait = Annotated[
    float,
    typer.Option(
        "--max-wait",
        envvar="INGEST_MAX_WAIT",
        metavar="SECONDS",
        help="Longest wait a server may ask for (Retry-After, rate-limit reset); a longer one "
        "stops the run instead (rerun later to resume).",
    ),
]
RequestTimeout = Annotated[
    float,
    typer.Option(
        "--request-timeout",
        envvar="INGEST_REQUEST_TIMEOUT",
        metavar="SECONDS",
        help="Deadline for one whole HTTP exchange, however slowly the bytes arrive.",
    ),
]
MaxBodyMb = Annotated[
    int,
    typer.Option(
        "--max-body-mb",
        envvar="INGEST_MAX_BODY_MB",
        metavar="MB",
        help="Largest answer accepted, after decompression (a page is about 2 MB).",
    ),
]
NoProgress = Annotated[
    bool, typer.Option("--no-progress", help="No live progress display.")
]
JsonOutput = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def default_log_format() -> str:
    return "text" if sys.stdout.isatty() else "json"


def build_settings(
    *,
    database_url: str = DEFAULTS.database_url,
    api_url: str | None = None,
    api_key: str | None = None,
    token: str | None = None,
    workers: int | None = None,
    page_size: int = DEFAULTS.page_size,
    log_format: str | None = None,
    progress: bool = True,
    max_wait: float = DEFAULTS.max_wait_s,
    request_timeout: float = DEFAULTS.request_timeout_s,
    max_body_mb: int = DEFAULTS.max_body_mb,
) -> Settings:
    """Turn parsed options into validated Settings (ConfigError on anything malformed)."""
    fmt = (log_format or default_log_format()).lower()
    settings = Settings(
        database_url=database_url,
        api_url=api_url or None,
        api_key=api_key or None,
        token=token or None,
        workers=workers,
        page_size=page_size,
        log_format=fmt,  # type: ignore[arg-type]
        progress=progress,
        max_wait=max_wait,
        request_timeout=request_timeout,
        max_body_mb=max_body_mb,
    )
    settings = validate(settings)
    check_dsn(settings.database_url)
    return settings
