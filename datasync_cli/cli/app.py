"""The `datasync` application: global flags, .env loading, and one module per command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from dotenv import load_dotenv

from .. import __version__
from ..errors import EXIT_CODE_MEANINGS
from .demo import demo
from .export_ids import export_ids
from .funnel import DebugOption, State
from .ingest import ingest
from .migrate import migrate
from .mock_api import mock_api
from .reset_cursor import reset_cursor
from .status import status
from .verify import verify

EXIT_CODES_EPILOG = "Exit codes: " + "; ".join(
    f"{int(code)} {meaning}" for code, meaning in EXIT_CODE_MEANINGS.items()
)

app = typer.Typer(
    name="datasync",
    help="Move the DataSync Analytics API event stream into PostgreSQL: fast, exactly once, "
    "resumable.",
    epilog=EXIT_CODES_EPILOG,
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"datasync {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    debug: DebugOption = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Settings come from flags, then the environment, then a .env file in this directory."""
    State.debug = debug
    env_file = Path.cwd() / ".env"
    if env_file.is_file():
        load_dotenv(env_file, override=False)


app.command()(ingest)
app.command()(migrate)
app.command()(status)
app.command("reset-cursor")(reset_cursor)
app.command()(verify)
app.command("export-ids")(export_ids)
app.command("mock-api")(mock_api)
app.command()(demo)


def main() -> None:
    app()
