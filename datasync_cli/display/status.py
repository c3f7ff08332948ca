"""`datasync status` for people: what is stored against the source, the last run, one line per
range; made to read at 80 columns. `status --json` carries every figure shown here and more."""

from __future__ import annotations

import textwrap
from datetime import datetime, timezone
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

NOT_MIGRATED = "schema not created yet: run datasync migrate or ingest"
LABEL_WIDTH = 10


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def instant(ms: int | None, none: str = "-", *, seconds: bool = True) -> str:
    """An epoch-ms instant as an ISO date and time in UTC (the zone is said once per block)."""
    if ms is None:
        return none
    shown = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return shown.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def _iso_utc(text: str | None) -> str:
    """A stored timestamp (ISO text with an offset) in UTC, to the second."""
    if not text:
        return "-"
    return datetime.fromisoformat(text).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def stored_line(data: dict[str, Any]) -> str:
    """Stored of total with a percentage, when the last run told the source's total."""
    stored, total = data["stored"], data.get("source_total")
    parts = f"{data['ingested']:,} ingested, {data['rejected']:,} rejected"
    if not total:
        return f"{stored:,} ({parts}); the source's total is not known yet" + _conflicts(data)
    line = f"{stored:,} of {total:,} ({100 * stored / total:.1f} %): {parts}"
    if stored > total:
        line += f"; {stored - total:,} more than the source reports"
    return line + _conflicts(data)


def _conflicts(data: dict[str, Any]) -> str:
    count = data.get("conflicts") or 0
    return f"; {count:,} later versions with other content kept aside" if count else ""


def last_run_line(data: dict[str, Any]) -> str:
    run = data["last_run"]
    if run is None:
        return "never: no ingest has run against this database"
    started = _iso_utc(run["started_at"])
    counts = f"{run['inserted']:,} inserted, {run['rejected']:,} rejected"
    if run["status"] == "running":
        if data.get("ingest_running"):
            return f"#{run['run_id']} running since {started}: {counts} so far"
        return (f"#{run['run_id']} running when its process died (started {started}); "
                "the next ingest resumes it")
    line = f"#{run['run_id']} {run['status']} {_iso_utc(run['finished_at'])}: {counts}"
    if run.get("message") and run["status"] != "completed":
        line += f" ({run['message']})"
    return line


def _holder(holder: Any) -> str:
    """The lease holder as the sink describes it: its `state` sentence, else its fields."""
    if isinstance(holder, dict):
        if holder.get("state"):
            return str(holder["state"])
        return ", ".join(f"{key} {value}" for key, value in holder.items() if value is not None)
    return str(holder)


def _state(row: dict[str, Any]) -> str:
    if row["finished"]:
        return "done"
    if row["last_ts_ms"] is None and not row["events"]:
        return "not started"
    return f"{row['endpoint'] or '-'}, {_age(row.get('age_s'))} ago"


def ranges_table(checkpoints: list[dict[str, Any]]) -> Table:
    """One line per range: where its reader has got to, where it stops, what it stored."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, padding=(0, 1))
    table.add_column("range", no_wrap=True)
    table.add_column("reached (UTC)", no_wrap=True)
    table.add_column("stops at (UTC)", no_wrap=True)
    table.add_column("events", justify="right", no_wrap=True)
    table.add_column("state", no_wrap=True)
    for row in checkpoints:
        table.add_row(
            escape(row["reader_id"]),
            instant(row["last_ts_ms"]),
            instant(row["lo_ms"], "oldest event", seconds=False),
            f"{row['events']:,}",
            _state(row),
        )
    return table


def render_status(data: dict[str, Any], console: Console | None = None) -> None:
    """Print `status` from the dict `status --json` prints."""
    console = console or Console(highlight=False)
    width = max(console.width, 40)

    def line(label: str, text: str) -> None:
        # A long line wraps under its text, not under its label.
        for shown in textwrap.wrap(text, width, initial_indent=f"{label:<{LABEL_WIDTH}}",
                                   subsequent_indent=" " * LABEL_WIDTH, break_on_hyphens=False):
            console.print(shown, markup=False, highlight=False, soft_wrap=True)

    line("database", data["database"])
    if not data["migrated"]:
        line("", NOT_MIGRATED)
        return
    line("stored", stored_line(data))
    if data.get("min_ts_ms") is not None:
        line("", f"events from {instant(data['min_ts_ms'])} to {instant(data['max_ts_ms'])} UTC")
    line("last run", last_run_line(data))
    # The lease is shown whoever holds it, live or expired: it says what the next ingest does.
    if data.get("ingest_holder"):
        line("lease", _holder(data["ingest_holder"]))
    elif data.get("ingest_running"):
        line("ingest", "running")
    if data["rejected_by_reason"]:
        reasons = ", ".join(f"{r}: {n:,}" for r, n in data["rejected_by_reason"].items())
        line("rejected", reasons)
    if not data["checkpoints"]:
        line("ranges", "no checkpoints: the next ingest starts from the newest event")
        return
    left = data["readers_unfinished"]
    console.print(
        f"\nranges, each read from its newest event down ({left} of "
        f"{len(data['checkpoints'])} unfinished):"
    )
    console.print(ranges_table(data["checkpoints"]))
