"""`datasync migrate`: create or upgrade the schema."""

from __future__ import annotations

import typer

from ..redact import redact_url
from ..settings import DEFAULTS
from ..sink import migrate as apply_migrations
from .funnel import command
from .options import DatabaseUrl, build_settings


@command
def migrate(database_url: DatabaseUrl = DEFAULTS.database_url) -> None:
    """Create or upgrade the schema; safe to repeat.

    Creates the database too when it is missing and the user may create databases.
    """
    settings = build_settings(database_url=database_url)
    applied = apply_migrations(settings.database_url)
    where = redact_url(settings.database_url)
    if applied:
        typer.echo(f"applied {len(applied)} migration(s) to {where}: {', '.join(applied)}")
    else:
        typer.echo(f"schema of {where} is up to date")
