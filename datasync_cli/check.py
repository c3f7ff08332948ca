"""`datasync check`: whether ingest can start, and what to expect, without ingesting.

Each part ingest depends on is looked at in the order ingest meets it (settings, database,
ingest lock, API), so the exit status is the one ingest would end with. Little of the standard
endpoint's rate budget is spent: the API's base proves the URL, the token endpoint the key, and
the one event read comes from the feed whenever a token can be had.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from .clock import Clock, SystemClock
from .errors import ConfigError, DatasyncError, ExitCode
from .redact import redact_url
from .settings import Settings
from .sink import DatabaseProbe, probe_database
from .source import SourceConfig, open_source

# Rounded down from the write path measured in docs/performance.md (33,000 events/s).
WRITE_EVENTS_PER_S = 30_000
# A simulator event (about 350 bytes of JSON) stored as a row with its two indexes.
EMPTY_BYTES_PER_EVENT = 650
# The feed's hidden throttle as reported from the live service: about 0.7 requests/s was safe.
FEED_THROTTLE_RPS = 0.7
# The live service's window; the number of requests in it is read from the answer's headers.
STANDARD_WINDOW_S = 60.0
STANDARD_LIMIT = 10
PROBE_ATTEMPTS = 2
# The order in which ingest meets each failure, and so the status it would exit with.
EXIT_ORDER = (ExitCode.CONFIG, ExitCode.DATABASE, ExitCode.LOCK_HELD, ExitCode.SOURCE)


@dataclass(frozen=True)
class Problem:
    """Something that would stop ingest, with the status it would exit with."""

    part: str
    exit_code: int
    message: str


@dataclass(frozen=True)
class ApiProbe:
    """The API as ingest would meet it: reachable, the key accepted, a token, one event read."""

    url: str
    answered_in_s: float
    endpoint: str
    round_trip_s: float
    source_total: int | None
    token: str | None = None  # "supplied" or "issued"; None when there is none
    token_left_s: float | None = None  # None when unknown (a supplied token's age is)
    token_problem: str | None = None
    supplied_token_refused: bool = False
    rate_limit: int | None = None


@dataclass(frozen=True)
class Estimate:
    """What the rest of the stream will take, and how each figure was reached."""

    remaining: int
    pages: int
    duration_s: float
    duration_basis: str
    # Longer, when the feed's hidden throttle is met; None off the feed or when no longer.
    duration_if_throttled_s: float | None
    bytes_per_event: float
    disk_bytes: int
    disk_basis: str


@dataclass(frozen=True)
class CheckReport:
    database: DatabaseProbe | None
    api: ApiProbe | None
    estimate: Estimate | None
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        codes = {p.exit_code for p in self.problems}
        return next((int(code) for code in EXIT_ORDER if code in codes), min(codes, default=0))

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "exit_code": self.exit_code,
            "database": self.database.as_dict() if self.database else None,
            "api": asdict(self.api) if self.api else None,
            "estimate": asdict(self.estimate) if self.estimate else None,
            "problems": [asdict(p) for p in self.problems],
            "notes": self.notes,
        }


def run_check(settings: Settings, clock: Clock | None = None) -> CheckReport:
    """Look at the database and the API as ingest would, and estimate the rest of the run."""
    problems: list[Problem] = []
    notes: list[str] = []
    database = _check_database(settings.database_url, problems, notes)
    api = _check_api(settings, clock or SystemClock(), problems, notes)
    estimate = _estimate(settings, database, api) if api is not None else None
    return CheckReport(database, api, estimate, problems, notes)


def _check_database(dsn: str, problems: list[Problem], notes: list[str]) -> DatabaseProbe | None:
    try:
        probe = probe_database(dsn)
    except DatasyncError as exc:
        problems.append(Problem("database", exc.exit_code, str(exc)))
        return None
    where = probe.where
    if not probe.exists:
        if probe.may_create_database:
            notes.append(f"database {where} does not exist yet: ingest creates it")
        else:
            problems.append(Problem(
                "database", ExitCode.DATABASE,
                f"database {where} does not exist and the user may not create it (create it "
                "for that user, or grant CREATEDB)",
            ))
        return probe
    if probe.read_only:
        problems.append(Problem(
            "database", ExitCode.DATABASE,
            f"database {where} is read-only (a standby, or default_transaction_read_only on): "
            "point --database-url at a writable primary",
        ))
    if probe.missing_privileges:
        problems.append(Problem(
            "database", ExitCode.DATABASE,
            f"the user {probe.role} lacks {'; '.join(probe.missing_privileges)} (the GRANTs are "
            "in docs/operations.md, \"Database privileges\")",
        ))
    if probe.ingest_running:
        problems.append(Problem(
            "ingest lock", ExitCode.LOCK_HELD,
            "another datasync ingest is running against this database (wait for it to finish "
            "or stop it)",
        ))
    return probe


def _check_api(
    settings: Settings, clock: Clock, problems: list[Problem], notes: list[str]
) -> ApiProbe | None:
    try:
        settings.require_api()
    except ConfigError as exc:
        problems.append(Problem("settings", exc.exit_code, str(exc)))
        return None
    # Fail within seconds: one retry, not the eight a long run affords.
    config = replace(SourceConfig.from_settings(settings), max_attempts=PROBE_ATTEMPTS)
    source = open_source(config, clock, None)
    try:
        # The API's base and the token request go out together: one round trip less to wait.
        with ThreadPoolExecutor(max_workers=1) as pool:
            info = pool.submit(_timed, source.info, clock)
            source.tokens.current()  # asks for a token now when the key allows
            answered = info.result()
        started = clock.monotonic()
        page = source.probe(1)  # the feed when there is a token, else the standard endpoint
        round_trip = clock.monotonic() - started
    except DatasyncError as exc:
        problems.append(Problem("api", exc.exit_code, str(exc)))
        return None
    finally:
        source.close()
    token = source.tokens.current(wait=False)
    supplied_refused = config.token is not None and source.tokens.origin() != "supplied"
    probe = ApiProbe(
        url=redact_url(config.base_url),
        answered_in_s=round(answered, 4),
        endpoint=page.endpoint,
        round_trip_s=round(round_trip, 4),
        source_total=page.total,
        token=token.origin if token else None,
        token_left_s=None if token is None or token.estimated else _rounded(
            source.tokens.seconds_left()
        ),
        token_problem=source.tokens.last_problem,
        supplied_token_refused=supplied_refused,
        rate_limit=source.budget.limit,
    )
    if supplied_refused:
        notes.append("the service refused the supplied stream token"
                     + ("; a new one was obtained with the key" if token else ""))
    if page.endpoint == "standard":
        notes.append("without a stream token ingest reads the rate-limited standard endpoint")
    if page.total is None:
        notes.append("the API reported no meta.total: no estimate, and verify needs --expected")
    return probe


def _timed(call: Callable[[], object], clock: Clock) -> float:
    started = clock.monotonic()
    call()
    return clock.monotonic() - started


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def seconds(value: float) -> str:
    """A short time as people read it: 0.21 s, 35 ms."""
    return f"{value:.2f} s" if value >= 0.1 else f"{value * 1000:.0f} ms"


def _estimate(settings: Settings, db: DatabaseProbe | None, api: ApiProbe) -> Estimate | None:
    if api.source_total is None:
        return None
    stored = db.stored if db is not None else 0
    remaining = max(api.source_total - stored, 0)
    pages = math.ceil(remaining / settings.page_size)
    readers = max(1, min(settings.effective_workers(), pages))
    if api.endpoint == "feed":
        fetch_s = pages * api.round_trip_s / readers
        basis = (f"{pages:,} pages of {settings.page_size:,} at {seconds(api.round_trip_s)} "
                 f"a request, {readers} at a time")
    else:
        # Each window's requests go out at once; then the readers wait for the next window.
        limit = api.rate_limit or STANDARD_LIMIT
        windows = math.ceil(pages / limit)
        fetch_s = max(windows - 1, 0) * STANDARD_WINDOW_S + min(pages, limit) * api.round_trip_s
        basis = f"{pages:,} pages at {limit} requests a minute on the standard endpoint"
    write_s = remaining / WRITE_EVENTS_PER_S
    throttled_s = pages / FEED_THROTTLE_RPS if api.endpoint == "feed" else None
    if throttled_s is not None and throttled_s <= max(fetch_s, write_s):
        throttled_s = None
    if write_s > fetch_s:
        basis += f"; writing about {WRITE_EVENTS_PER_S:,} events/s takes longer"
    if db is not None and db.ingested and db.stored_bytes:
        per_event = db.stored_bytes / db.stored
        disk_basis = f"{per_event:,.0f} bytes an event, as stored so far"
    else:
        per_event = EMPTY_BYTES_PER_EVENT
        disk_basis = f"about {per_event} bytes an event with indexes; nothing is stored yet"
    return Estimate(
        remaining=remaining,
        pages=pages,
        duration_s=round(max(fetch_s, write_s), 1),
        duration_basis=basis,
        duration_if_throttled_s=_rounded(throttled_s),
        bytes_per_event=round(per_event, 1),
        disk_bytes=int(remaining * per_event),
        disk_basis=disk_basis,
    )
