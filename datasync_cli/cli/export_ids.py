"""`datasync export-ids`: every stored id, one per line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ..settings import DEFAULTS
from ..sink import iter_ids
from .funnel import command
from .options import DatabaseUrl, build_settings

OutputPath = Annotated[
    Path,
    typer.Argument(metavar="FILE", help="File to write, one id per line; - for stdout."),
]


@command
def export_ids(path: OutputPath, database_url: DatabaseUrl = DEFAULTS.database_url) -> None:
    """Write every stored event id, one per line, streamed in id order."""
    settings = build_settings(database_url=database_url)
    count = 0
    out = sys.stdout if str(path) == "-" else path.open("w", encoding="utf-8")
    try:
        for event_id in iter_ids(settings.database_url):
            out.write(event_id + "\n")
            count += 1
    finally:
        if out is not sys.stdout:
            out.close()
    if str(path) != "-":
        typer.echo(f"wrote {count:,} ids to {path}")
