"""The `datasync` application: global flags, .env loading, and one module per command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from dotenv import load_dotenv

from .. import __version__
from .check import check
from .demo import demo
from .export_ids import export_ids
from .funnel import DebugOption, State
from .helpformat import DatasyncCommand, DatasyncGroup
from .ingest import ingest
from .migrate import migrate
from .mock_api import mock_api
from .reset_cursor import reset_cursor
from .status import status
from .verify import verify

app = typer.Typer(
    name="datasync",
    help="Move the DataSync Analytics API event stream into PostgreSQL: fast, exactly once, "
    "resumable.",
    cls=DatasyncGroup,
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    # Plain help, as Click-based tools print it: Rich's panels cut long values (the default
    # DSN) at 80 columns instead of wrapping them.
    rich_markup_mode=None,
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


for name, function in (
    ("ingest", ingest),
    ("migrate", migrate),
    ("status", status),
    ("check", check),
    ("reset-cursor", reset_cursor),
    ("verify", verify),
    ("export-ids", export_ids),
    ("mock-api", mock_api),
    ("demo", demo),
):
    app.command(name, cls=DatasyncCommand)(function)


def main() -> None:
    app()
