"""`datasync mock-api`: serve the local DataSync-compatible simulator."""

from __future__ import annotations

from typing import Annotated

import typer

from ..mockapi import MockConfig, serve
from .funnel import command

_DATA = "Dataset"
_LIMITS = "Limits and timing"
_FAULTS = "Faults (off by default)"


@command
def mock_api(
    host: Annotated[
        str, typer.Option(envvar="MOCK_HOST", metavar="HOST", help="Address to listen on.")
    ] = "127.0.0.1",
    port: Annotated[
        int,
        typer.Option(
            envvar="MOCK_PORT", metavar="PORT", min=0, help="Port to listen on (0 = any free port)."
        ),
    ] = 8080,
    events: Annotated[
        int,
        typer.Option(
            envvar="MOCK_EVENTS", metavar="N", min=0, rich_help_panel=_DATA,
            help="Number of distinct records in the stream.",
        ),
    ] = 3_000_000,
    seed: Annotated[
        int,
        typer.Option(
            envvar="MOCK_SEED", metavar="N", rich_help_panel=_DATA,
            help="Seed of the synthetic dataset: same seed and size, same events.",
        ),
    ] = 42,
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="MOCK_API_KEY", metavar="KEY", show_default=False,
            help="The only X-API-Key accepted (unset: any non-empty key).",
        ),
    ] = None,
    rate_limit: Annotated[
        int,
        typer.Option(
            envvar="MOCK_RATE_LIMIT", metavar="N", min=1, rich_help_panel=_LIMITS,
            help="Standard endpoint: requests per window per key (half for ?api_key=).",
        ),
    ] = 10,
    rate_window: Annotated[
        float,
        typer.Option(
            envvar="MOCK_RATE_WINDOW", metavar="SECONDS", rich_help_panel=_LIMITS,
            help="Standard endpoint: fixed window length in seconds.",
        ),
    ] = 60.0,
    cursor_ttl: Annotated[
        float,
        typer.Option(
            envvar="MOCK_CURSOR_TTL", metavar="SECONDS", rich_help_panel=_LIMITS,
            help="Seconds a cursor stays valid after it is issued.",
        ),
    ] = 117.0,
    token_ttl: Annotated[
        float,
        typer.Option(
            envvar="MOCK_TOKEN_TTL", metavar="SECONDS", rich_help_panel=_LIMITS,
            help="Seconds a stream token stays valid.",
        ),
    ] = 300.0,
    no_stream_access: Annotated[
        bool,
        typer.Option(
            "--no-stream-access", envvar="MOCK_NO_STREAM_ACCESS", rich_help_panel=_LIMITS,
            help="The stream-access token endpoint always answers 403 DASHBOARD_REQUIRED.",
        ),
    ] = False,
    latency_ms: Annotated[
        float,
        typer.Option(
            envvar="MOCK_LATENCY_MS", metavar="MS", min=0.0, rich_help_panel=_LIMITS,
            help="Delay added to every request, in ms (the live service: about 3000-4000).",
        ),
    ] = 0.0,
    latency_jitter_ms: Annotated[
        float,
        typer.Option(
            envvar="MOCK_LATENCY_JITTER_MS", metavar="MS", min=0.0, rich_help_panel=_LIMITS,
            help="Extra random delay per request, uniform in [0, this] ms.",
        ),
    ] = 0.0,
    feed_rate: Annotated[
        float,
        typer.Option(
            envvar="MOCK_FEED_RATE", metavar="RATE", min=0.0, rich_help_panel=_LIMITS,
            help="Hidden feed throttle: sustained requests/s per key, 0 = off. Over it: 429 "
            "with Retry-After.",
        ),
    ] = 0.0,
    feed_burst: Annotated[
        int,
        typer.Option(
            envvar="MOCK_FEED_BURST", metavar="N", min=1, rich_help_panel=_LIMITS,
            help="Hidden feed throttle: burst size of its token bucket.",
        ),
    ] = 10,
    keepalive_timeout: Annotated[
        float,
        typer.Option(
            envvar="MOCK_KEEPALIVE_TIMEOUT", metavar="SECONDS", rich_help_panel=_LIMITS,
            help="Seconds an idle keep-alive connection stays open (Node's default: 5).",
        ),
    ] = 5.0,
    p5xx: Annotated[
        float,
        typer.Option(
            "--p5xx", envvar="MOCK_P5XX", metavar="P", min=0.0, max=1.0,
            rich_help_panel=_FAULTS,
            help="Probability of a 500/502/503/504 answer to a data request.",
        ),
    ] = 0.0,
    p_truncate: Annotated[
        float,
        typer.Option(
            envvar="MOCK_P_TRUNCATE", metavar="P", min=0.0, max=1.0, rich_help_panel=_FAULTS,
            help="Probability of a 200 whose JSON body is cut short.",
        ),
    ] = 0.0,
    p_drop: Annotated[
        float,
        typer.Option(
            envvar="MOCK_P_DROP", metavar="P", min=0.0, max=1.0, rich_help_panel=_FAULTS,
            help="Probability of closing the connection without any response.",
        ),
    ] = 0.0,
    p_missing_fields: Annotated[
        float,
        typer.Option(
            envvar="MOCK_P_MISSING_FIELDS", metavar="P", min=0.0, max=1.0,
            rich_help_panel=_FAULTS,
            help="Probability that a feed page carries events lacking optional fields "
            "(header X-Chaos-Applied: missingFields).",
        ),
    ] = 0.0,
    bad_records: Annotated[
        int,
        typer.Option(
            envvar="MOCK_BAD_RECORDS", metavar="N", min=0, rich_help_panel=_FAULTS,
            help="Records replaced by invalid ones (no id, empty id, bad or null timestamp, "
            "NUL character), plus as many valid events with escapes, non-BMP text or huge "
            "properties.",
        ),
    ] = 0,
    duplicates: Annotated[
        int,
        typer.Option(
            envvar="MOCK_DUPLICATES", metavar="N", min=0, rich_help_panel=_FAULTS,
            help="Events served a second time, about one page after the first.",
        ),
    ] = 0,
    early_end: Annotated[
        float,
        typer.Option(
            envvar="MOCK_EARLY_END", metavar="FRACTION", rich_help_panel=_FAULTS,
            help="Fraction of the stream after which it answers hasMore false (1.0 = off).",
        ),
    ] = 1.0,
    extra_ids: Annotated[
        int,
        typer.Option(
            envvar="MOCK_EXTRA_IDS", metavar="N", min=0, rich_help_panel=_FAULTS,
            help="Serve this many more distinct ids than meta.total reports.",
        ),
    ] = 0,
    log_requests: Annotated[
        bool,
        typer.Option(
            "--log-requests", envvar="MOCK_LOG_REQUESTS",
            help="Log one line per request on stderr.",
        ),
    ] = False,
) -> None:
    """Serve a local DataSync-compatible API.

    It behaves like the live service with every fault off; each flag below turns one number
    or fault up, so any scenario can be rehearsed without touching the real service.
    """
    try:
        config = MockConfig(
            host=host, port=port, events=events, seed=seed, api_key=api_key,
            rate_limit=rate_limit, rate_window=rate_window, cursor_ttl=cursor_ttl,
            token_ttl=token_ttl, no_stream_access=no_stream_access, latency_ms=latency_ms,
            latency_jitter_ms=latency_jitter_ms, feed_rate=feed_rate, feed_burst=feed_burst,
            p5xx=p5xx, p_truncate=p_truncate, p_drop=p_drop, p_missing_fields=p_missing_fields,
            bad_records=bad_records, duplicates=duplicates, early_end=early_end,
            extra_ids=extra_ids, keepalive_timeout=keepalive_timeout, log_requests=log_requests,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    try:
        serve(config)
    except OSError as exc:
        raise typer.BadParameter(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); choose another --port"
        ) from None
