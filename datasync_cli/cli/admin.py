"""`migrate`, `status`, `reset-cursor`, `verify` and `export-ids`: the operator's commands."""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from ..settings import redact_url, secret_values
from ..sink import CheckpointStore, ingest_running, iter_ids, migrate, store_stats
from ..verify import verify
from .common import ApiKey, ApiUrl, DatabaseUrl, build_settings, guarded

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
CURSOR_TTL_S = 117
DEFAULT_DSN = "postgresql://postgres:postgres@localhost:5432/ingestion"


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


def _print_json(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data, default=str, option=orjson.OPT_INDENT_2).decode() + "\n")


def register(app: typer.Typer) -> None:
    @app.command("migrate")
    def migrate_cmd(database_url: DatabaseUrl = DEFAULT_DSN) -> None:
        """Create or upgrade the schema; safe to run any number of times."""

        def body() -> None:
            settings = build_settings(database_url=database_url)
            applied = migrate(settings.database_url)
            where = redact_url(settings.database_url)
            if applied:
                typer.echo(f"applied {len(applied)} migration(s) to {where}: {', '.join(applied)}")
            else:
                typer.echo(f"schema of {where} is up to date")

        guarded(body, secret_values(None, None, database_url))

    @app.command("status")
    def status_cmd(database_url: DatabaseUrl = DEFAULT_DSN, json_out: JsonFlag = False) -> None:
        """Checkpoints per reader, row counts, rejected count and whether a run completed."""

        def body() -> None:
            settings = build_settings(database_url=database_url)
            stats = store_stats(settings.database_url)
            data = stats.as_dict()
            running = stats.migrated and ingest_running(settings.database_url)
            data["ingest_running"] = running
            last = stats.last_run_status or "never"
            if last == "running" and not running:
                last = "running when its process died (the next ingest resumes it)"
            if json_out:
                _print_json(data)
                return
            console = Console()
            console.print(
                f"ingested [bold]{stats.ingested:,}[/]  rejected [bold]{stats.rejected:,}[/]  "
                f"last run: {last}"
            )
            if stats.rejected_by_reason:
                reasons = ", ".join(f"{r}: {n}" for r, n in stats.rejected_by_reason.items())
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

        guarded(body, secret_values(None, None, database_url))

    @app.command("reset-cursor")
    def reset_cmd(
        database_url: DatabaseUrl = DEFAULT_DSN,
        yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
        = False,
    ) -> None:
        """Delete the checkpoints so the next ingest starts over (stored rows stay)."""

        def body() -> None:
            settings = build_settings(database_url=database_url)
            if not yes:
                if not sys.stdin.isatty():
                    typer.echo(
                        "error: refusing to reset checkpoints without confirmation; "
                        "pass --yes to do it non-interactively",
                        err=True,
                    )
                    raise typer.Exit(1)
                if not typer.confirm("Delete all checkpoints? The next ingest starts over"):
                    typer.echo("nothing changed")
                    raise typer.Exit(1)
            migrate(settings.database_url)
            removed = CheckpointStore(settings.database_url).reset()
            typer.echo(f"deleted {removed} checkpoint(s); the next ingest starts from the newest")

        guarded(body, secret_values(None, None, database_url))

    @app.command("verify")
    def verify_cmd(
        database_url: DatabaseUrl = DEFAULT_DSN,
        api_url: ApiUrl = None,
        api_key: ApiKey = None,
        expected: Annotated[
            int | None,
            typer.Option("--expected", help="Records the source holds (else meta.total)."),
        ] = None,
        json_out: JsonFlag = False,
    ) -> None:
        """Compare what is stored with what the source holds; exit 1 when they don't add up."""
        secrets = secret_values(api_key, None, database_url)

        def body() -> None:
            settings = build_settings(database_url=database_url, api_url=api_url, api_key=api_key)
            verdict = verify(settings, expected)
            if json_out:
                _print_json(verdict.as_dict())
            else:
                typer.echo(("ok: " if verdict.ok else "MISMATCH: ") + verdict.explain())
            if not verdict.ok:
                raise typer.Exit(1)

        guarded(body, secrets)

    @app.command("export-ids")
    def export_ids_cmd(
        path: Annotated[Path, typer.Argument(help="File to write, one id per line; - = stdout.")],
        database_url: DatabaseUrl = DEFAULT_DSN,
    ) -> None:
        """Write every stored event id, one per line, streamed in id order."""

        def body() -> None:
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

        guarded(body, secret_values(None, None, database_url))
