"""`datasync status`: checkpoints, counts and the last run."""

from __future__ import annotations

from ..display import render_status
from ..settings import DEFAULTS
from ..sink import store_stats
from .funnel import command
from .options import DatabaseUrl, JsonOutput, build_settings
from .output import print_json


@command
def status(database_url: DatabaseUrl = DEFAULTS.database_url, json_out: JsonOutput = False) -> None:
    """Checkpoints per range, row counts, rejected count and whether a run completed."""
    settings = build_settings(database_url=database_url)
    stats = store_stats(settings.database_url)
    data = stats.as_dict()
    running = stats.lease is not None and stats.lease.live()
    data["ingest_running"] = running
    if json_out:
        print_json(data)
        return
    last = stats.last_run_status or "never"
    if last == "running" and not running:
        last = "running when its process died (the next ingest resumes it)"
    render_status(data, last)
