"""`datasync reset-cursor`: forget the checkpoints so the next ingest starts over."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ..errors import ExitCode, LockHeldError
from ..redact import redact_url
from ..settings import DEFAULTS
from ..sink import CheckpointStore, ingest_running, migrate
from .funnel import command
from .options import DatabaseUrl, build_settings

Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


@command
def reset_cursor(database_url: DatabaseUrl = DEFAULTS.database_url, yes: Yes = False) -> None:
    """Forget the checkpoints so the next ingest starts over.

    Stored rows stay; reading them again is harmless. Refused while an ingest runs.
    """
    settings = build_settings(database_url=database_url)
    dsn = settings.database_url
    where = redact_url(dsn)
    # A running ingest rewrites its checkpoints with every page: deleting them now would
    # change nothing and report otherwise.
    _refuse_while_ingesting(dsn)
    if not yes:
        if not interactive():
            typer.echo(
                f"error: refusing to reset the checkpoints of {where} without confirmation; "
                "pass --yes to do it non-interactively",
                err=True,
            )
            raise typer.Exit(ExitCode.FAILED)
        if not typer.confirm(
            f"Delete all checkpoints in {where}? The next ingest reads the whole stream again "
            "(stored rows stay)"
        ):
            typer.echo("nothing changed")
            raise typer.Exit(ExitCode.FAILED)
        _refuse_while_ingesting(dsn)  # one may have started while the question was open
    migrate(dsn)
    with CheckpointStore(dsn) as store:
        removed = store.reset()
    typer.echo(
        f"deleted {removed} checkpoint(s) in {where}; the next ingest starts from the newest"
    )


def interactive() -> bool:
    """Whether someone can answer the question (stdin is a terminal)."""
    return sys.stdin.isatty()


def _refuse_while_ingesting(dsn: str) -> None:
    if ingest_running(dsn):
        raise LockHeldError(
            "an ingest is running against this database; its checkpoints were not changed",
            "wait for it to finish or stop it, then run reset-cursor again",
        )
