"""The `datasync` application: global flags, .env loading, and one module per command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from dotenv import load_dotenv

from .. import __version__
from . import admin, demo, ingest, mock_api
from .common import State

app = typer.Typer(
    name="datasync",
    help="Move the DataSync Analytics API event stream into PostgreSQL: fast, exactly once, "
    "resumable.",
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
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks for unexpected errors.")
    ] = False,
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


ingest.register(app)
admin.register(app)
mock_api.register(app)
demo.register(app)


def main() -> None:
    app()
