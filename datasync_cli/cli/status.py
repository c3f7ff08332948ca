"""`datasync status`: what is stored against the source, the checkpoints and the last run."""

from __future__ import annotations

from typing import Any

from ..display import render_status
from ..settings import DEFAULTS
from ..sink import StoreStats, describe, store_stats
from .funnel import command
from .options import DatabaseUrl, JsonOutput, build_settings
from .output import print_json


@command
def status(database_url: DatabaseUrl = DEFAULTS.database_url, json_out: JsonOutput = False) -> None:
    """Show what is stored, the checkpoints and the last run.

    One line per reader range; stored records against the source's total from the last run.
    Read-only: safe while an ingest runs.
    """
    settings = build_settings(database_url=database_url)
    stats = store_stats(settings.database_url)
    data = status_data(stats, describe(settings.database_url))
    data["ingest_running"] = stats.lease is not None and stats.lease.live()
    if json_out:
        print_json(data)
    else:
        render_status(data)


def status_data(stats: StoreStats, database: str) -> dict[str, Any]:
    """Every figure of the store, plus the ones status derives: stored of the source's total."""
    data = stats.as_dict()
    total = stats.last_run.source_total if stats.last_run else None
    stored = stats.ingested + stats.rejected
    data.update(
        database=database,
        stored=stored,
        source_total=total,
        stored_percent=round(100 * stored / total, 2) if total else None,
    )
    return data
