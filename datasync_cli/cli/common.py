"""Options shared by commands, the settings builder and the one error funnel to exit codes."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from typing import Annotated, NoReturn, TypeVar

import typer

from ..errors import DatasyncError
from ..progress import Scrubber
from ..settings import DEFAULT_DATABASE_URL, Settings, validate

T = TypeVar("T")

DatabaseUrl = Annotated[
    str,
    typer.Option(
        "--database-url",
        envvar="DATABASE_URL",
        help="PostgreSQL DSN.",
        show_default="postgresql://postgres:***@localhost:5432/ingestion",
    ),
]
ApiUrl = Annotated[
    str | None,
    typer.Option("--api-url", envvar="API_BASE_URL", help="API base URL, ending in /api/v1."),
]
ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key", envvar="TARGET_API_KEY", help="API key sent as X-API-Key.", show_default=False
    ),
]
LogFormatOpt = Annotated[
    str | None,
    typer.Option(
        "--log-format",
        envvar="LOG_FORMAT",
        help="text (human, Rich) or json (one object per line). Default: text on a terminal.",
    ),
]
Debug = Annotated[bool, typer.Option("--debug", help="Show a traceback on unexpected errors.")]


class State:
    """Process-wide flags set by the top-level callback."""

    debug = False


def default_log_format() -> str:
    return "text" if sys.stdout.isatty() else "json"


def build_settings(
    *,
    database_url: str = DEFAULT_DATABASE_URL,
    api_url: str | None = None,
    api_key: str | None = None,
    token: str | None = None,
    workers: int | None = None,
    page_size: int = 5000,
    log_format: str | None = None,
    progress: bool = True,
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
        debug=State.debug,
    )
    return validate(settings)


def fail(message: str, code: int, secrets: list[str] | None = None) -> NoReturn:
    """Print one line to stderr and exit with `code`."""
    scrub = Scrubber(secrets or [])
    typer.echo(scrub(f"error: {message}"), err=True)
    raise typer.Exit(code)


def guarded(fn: Callable[[], T], secrets: list[str] | None = None) -> T:
    """Run a command body, turning every expected error into one line and its exit status."""
    try:
        return fn()
    except typer.Exit:
        raise
    except DatasyncError as exc:
        if State.debug:
            traceback.print_exc()
        fail(str(exc), exc.exit_code, secrets)
    except KeyboardInterrupt:
        fail("interrupted", 130, secrets)
    except Exception as exc:  # the funnel of last resort: never a bare traceback
        if State.debug:
            traceback.print_exc()
        fail(
            f"unexpected {type(exc).__name__}: {exc} (rerun with --debug for a traceback)",
            1,
            secrets,
        )
