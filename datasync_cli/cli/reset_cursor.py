"""`datasync reset-cursor`: forget the checkpoints so the next ingest starts over."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ..errors import ExitCode
from ..settings import DEFAULTS
from ..sink import CheckpointStore, migrate
from .funnel import command
from .options import DatabaseUrl, build_settings

Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


@command
def reset_cursor(database_url: DatabaseUrl = DEFAULTS.database_url, yes: Yes = False) -> None:
    """Delete the checkpoints so the next ingest starts over (stored rows stay)."""
    settings = build_settings(database_url=database_url)
    if not yes:
        if not sys.stdin.isatty():
            typer.echo(
                "error: refusing to reset checkpoints without confirmation; "
                "pass --yes to do it non-interactively",
                err=True,
            )
            raise typer.Exit(ExitCode.FAILED)
        if not typer.confirm("Delete all checkpoints? The next ingest starts over"):
            typer.echo("nothing changed")
            raise typer.Exit(ExitCode.FAILED)
    migrate(settings.database_url)
    with CheckpointStore(settings.database_url) as store:
        removed = store.reset()
    typer.echo(f"deleted {removed} checkpoint(s); the next ingest starts from the newest")
