"""`datasync verify`: stored records against the source's total."""

from __future__ import annotations

from typing import Annotated

import typer

from ..errors import ExitCode
from ..settings import DEFAULTS
from ..verify import verify as compare
from .funnel import command
from .options import (
    ApiKey,
    ApiUrl,
    DatabaseUrl,
    JsonOutput,
    MaxBodyMb,
    MaxWait,
    RequestTimeout,
    build_settings,
)
from .output import print_json

Expected = Annotated[
    int | None,
    typer.Option(
        "--expected", metavar="N", help="Records the source holds.",
        show_default="meta.total from the API",
    ),
]


@command
def verify(
    database_url: DatabaseUrl = DEFAULTS.database_url,
    api_url: ApiUrl = None,
    api_key: ApiKey = None,
    expected: Expected = None,
    json_out: JsonOutput = False,
    max_wait: MaxWait = DEFAULTS.max_wait_s,
    request_timeout: RequestTimeout = DEFAULTS.request_timeout_s,
    max_body_mb: MaxBodyMb = DEFAULTS.max_body_mb,
) -> None:
    """Compare what is stored with the source's total.

    Stored means ingested plus rejected; exits 1 when records are missing or extra.
    """
    settings = build_settings(
        database_url=database_url,
        api_url=api_url,
        api_key=api_key,
        max_wait=max_wait,
        request_timeout=request_timeout,
        max_body_mb=max_body_mb,
    )
    verdict = compare(settings, expected)
    if json_out:
        print_json(verdict.as_dict())
    else:
        label = "MISMATCH: "
        if verdict.ok:
            label = "ok: "
        elif verdict.ingest_running:
            label = "in progress: "
        typer.echo(label + verdict.explain())
    if not verdict.ok:
        raise typer.Exit(ExitCode.FAILED)
