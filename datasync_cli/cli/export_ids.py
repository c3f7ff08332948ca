"""`datasync export-ids`: every stored id, one per line."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Annotated, TextIO

import typer

from ..errors import ConfigError
from ..settings import DEFAULTS
from ..sink import iter_ids
from .funnel import command
from .options import DatabaseUrl, build_settings
from .output import stdout_gone

OutputPath = Annotated[
    Path,
    typer.Argument(metavar="FILE", help="File to write, one id per line; - for stdout."),
]


@command
def export_ids(path: OutputPath, database_url: DatabaseUrl = DEFAULTS.database_url) -> None:
    """Write every stored event id, one per line.

    Streamed in id order, so memory stays flat; - writes to stdout.
    """
    settings = build_settings(database_url=database_url)
    if str(path) == "-":
        try:
            _write_ids(settings.database_url, sys.stdout)
            sys.stdout.flush()
        except BrokenPipeError:
            stdout_gone()  # `export-ids - | head`: the reader has all it wanted
        return
    # Opened before the database is read, so an unusable path fails at once with exit 2.
    try:
        with path.open("w", encoding="utf-8") as out:
            count = _write_ids(settings.database_url, out)
    except OSError as exc:
        raise ConfigError(
            f"cannot write the ids to {path}: {exc.strerror or exc}",
            "name a file in an existing, writable directory with room to spare, or - for stdout",
        ) from None
    typer.echo(f"wrote {count:,} ids to {path}")


def _write_ids(dsn: str, out: TextIO) -> int:
    count = 0
    with contextlib.closing(iter_ids(dsn)) as ids:
        for event_id in ids:
            out.write(event_id + "\n")
            count += 1
    return count
