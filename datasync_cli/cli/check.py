"""`datasync check`: whether ingest can start, and what to expect, without ingesting."""

from __future__ import annotations

import textwrap

import typer

from ..check import ApiProbe, CheckReport, run_check, seconds
from ..settings import DEFAULTS
from ..sink import DatabaseProbe
from .funnel import command
from .options import (
    ApiKey,
    ApiUrl,
    DatabaseUrl,
    JsonOutput,
    PageSize,
    Token,
    Workers,
    build_settings,
)
from .output import print_json

LABEL_WIDTH = 10
WIDTH = 80


@command
def check(
    database_url: DatabaseUrl = DEFAULTS.database_url,
    api_url: ApiUrl = None,
    api_key: ApiKey = None,
    token: Token = None,
    workers: Workers = None,
    page_size: PageSize = DEFAULTS.page_size,
    json_out: JsonOutput = False,
) -> None:
    """Check that ingest can start, and what to expect.

    Looks at the database (reachable, writable, schema, what is stored), the API (URL, key,
    stream token, the feed's round trip for one event, the source's total) and estimates the
    time and disk space for the rest, in a few seconds and without ingesting. Exits 0 when
    ingest can start, else with the status ingest would exit with.
    """
    settings = build_settings(
        database_url=database_url, api_url=api_url, api_key=api_key, token=token,
        workers=workers, page_size=page_size,
    )
    report = run_check(settings)
    if json_out:
        print_json(report.as_dict())
    else:
        for line in render(report):
            typer.echo(line)
    raise typer.Exit(report.exit_code)


def render(report: CheckReport) -> list[str]:
    """The report as lines of at most 80 columns: a label, then what was found."""
    lines: list[str] = []

    def add(label: str, text: str) -> None:
        lines.extend(textwrap.wrap(text, WIDTH, initial_indent=f"{label:<{LABEL_WIDTH}}",
                                   subsequent_indent=" " * LABEL_WIDTH, break_on_hyphens=False))

    if report.database is not None:
        add("database", _database(report.database))
        if report.database.exists and report.database.schema_versions:
            db = report.database
            add("stored", f"{db.stored:,} records ({db.ingested:,} ingested, {db.rejected:,} "
                          f"rejected), {_size(db.stored_bytes)}")
    if report.api is not None:
        add("api", _api(report.api))
        add("token", _token(report.api))
        add(report.api.endpoint, f"one event in {seconds(report.api.round_trip_s)}; the "
                                 f"source holds {_count(report.api.source_total)} records")
    if report.estimate is not None and not report.estimate.remaining:
        add("estimate", "nothing left but events newer than the last run: the store holds the "
                        "source's total")
    elif report.estimate is not None:
        est = report.estimate
        throttled = ""
        if est.duration_if_throttled_s is not None:
            throttled = (f", up to {_duration(est.duration_if_throttled_s)} if the feed's hidden "
                         "throttle (about 0.7 requests/s) is met")
        add("estimate", f"{est.remaining:,} records left: about {_duration(est.duration_s)} "
                        f"({est.duration_basis}){throttled}; {_size(est.disk_bytes)} of disk "
                        f"({est.disk_basis})")
    for note in report.notes:
        add("note", note)
    for problem in report.problems:
        add("problem", f"{problem.part}: {problem.message}")
    add("result", "ingest can start" if report.ok
        else f"ingest would stop with exit status {report.exit_code}")
    return lines


def _database(db: DatabaseProbe) -> str:
    if not db.exists:
        return f"{db.where}: does not exist yet"
    if not db.schema_versions:
        schema = f"schema not created yet ({len(db.pending_migrations)} migrations to apply)"
    elif db.pending_migrations:
        schema = (f"schema {db.schema_versions[-1]}, {len(db.pending_migrations)} "
                  "migration(s) to apply")
    else:
        schema = f"schema {db.schema_versions[-1]}, up to date"
    writable = "not writable" if db.read_only or db.missing_privileges else "writable"
    return f"{db.where} as {db.role}: {schema}, {writable}"


def _api(api: ApiProbe) -> str:
    return f"{api.url} answered in {seconds(api.answered_in_s)}; the key was accepted"


def _token(api: ApiProbe) -> str:
    if api.token is None:
        problem = (api.token_problem or "no key to ask for one, and none supplied")
        return "none: " + problem.removeprefix("no stream token: ")
    if api.token == "supplied":
        return "supplied and accepted; time left unknown, at most 5 min"
    left = f", {_duration(api.token_left_s)} left" if api.token_left_s is not None else ""
    return f"obtained with the key{left}; ingest renews it before it expires"


def _count(value: int | None) -> str:
    return "an unknown number of" if value is None else f"{value:,}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "an unknown time"
    if seconds < 60:
        return f"{max(seconds, 1):.0f} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


def _size(size: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:,.0f} {unit}" if unit == "bytes" else f"{size:,.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")
