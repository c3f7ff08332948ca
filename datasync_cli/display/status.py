"""`datasync status` for people: counts, the last run, and one row per range."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from rich.console import Console
from rich.table import Table

CURSOR_TTL_S = 117


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _instant(ms: int | None, none: str) -> str:
    if ms is None:
        return none
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%m-%d %H:%M:%S")


def _cursor_age(row: dict[str, Any]) -> str:
    """How old the saved cursor is; past the service's TTL the reader rebuilds its position."""
    if row["finished"] or not row.get("cursor"):
        return "-"
    age = row.get("age_s")
    label = _age(age)
    return f"{label} (expired)" if age is not None and age > CURSOR_TTL_S else label


def render_status(data: dict[str, Any], last_run: str, console: Console | None = None) -> None:
    """Print the status of a store (`StoreStats.as_dict()` plus `ingest_running`)."""
    console = console or Console()
    console.print(
        f"ingested [bold]{data['ingested']:,}[/]  rejected [bold]{data['rejected']:,}[/]  "
        f"last run: {last_run}"
    )
    if data.get("ingest_holder"):
        console.print(f"ingest lease: {data['ingest_holder']['state']}", markup=False)
    if data["rejected_by_reason"]:
        reasons = ", ".join(f"{r}: {n}" for r, n in data["rejected_by_reason"].items())
        console.print(f"rejected by reason: {reasons}")
    if not data["checkpoints"]:
        console.print("no checkpoints: the next `datasync ingest` starts from the newest")
        return
    table = Table(title="readers (newest first; times UTC)")
    for col in ("reader", "from", "down to", "position", "endpoint", "events",
                "updated", "cursor age", "finished"):
        table.add_column(col, no_wrap=col in ("reader", "events"))
    for row in data["checkpoints"]:
        table.add_row(
            row["reader_id"],
            _instant(row["hi_ms"], "newest"),
            _instant(row["lo_ms"], "oldest"),
            _instant(row["last_ts_ms"], "-"),
            row["endpoint"] or "-",
            f"{row['events']:,}",
            f"{_age(row.get('age_s'))} ago",
            _cursor_age(row),
            "yes" if row["finished"] else "no",
        )
    console.print(table)
