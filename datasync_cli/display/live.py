"""How a run reports itself: a Rich display on a terminal, JSON lines elsewhere, nothing in tests.

This is the only module that imports rich.progress. Every line it prints is scrubbed of secrets.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, TextIO

import orjson
from rich.console import Console, Group
from rich.live import Live
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from ..redact import Scrubber


@dataclass
class Snapshot:
    """The figures a run shows while it works; identical for the display and the log lines."""

    fetched: int = 0
    inserted: int = 0
    duplicates: int = 0
    rejected: int = 0
    total: int | None = None
    events_per_s: float = 0.0
    eta_s: float | None = None
    elapsed_s: float = 0.0
    endpoint: str = "-"
    readers: int = 0
    ranges_left: int = 0
    pages: int = 0
    retries: int = 0
    rate_limited: int = 0
    rate_wait_s: float = 0.0
    token_left_s: float | None = None
    token_origin: str | None = None
    feed_pace: float | None = None  # requests/s the feed is paced at, once a throttle showed
    warnings: list[str] = field(default_factory=list)


class Reporter(Protocol):
    def start(self, title: str) -> None: ...

    def update(self, snap: Snapshot) -> None: ...

    def log(self, message: str, level: str = "info", **fields: Any) -> None: ...

    def finish(self, summary: dict[str, Any]) -> None: ...


def fmt_duration(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "--"
    seconds = max(int(seconds), 0)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:d}:{s:02d}"


def token_warning(snap: Snapshot) -> str | None:
    """Warn when the stream token will run out before the run is expected to end."""
    if snap.token_left_s is None or snap.eta_s is None:
        return None
    if snap.token_left_s < snap.eta_s:
        return (
            f"stream token expires in {fmt_duration(snap.token_left_s)}, before the ETA "
            f"({fmt_duration(snap.eta_s)}); ingest will renew it or fall back to the standard "
            "endpoint"
        )
    return None


class NullReporter:
    """Reports nothing; keeps the last snapshot and the log for tests."""

    def __init__(self) -> None:
        self.snapshots: list[Snapshot] = []
        self.lines: list[tuple[str, str, dict[str, Any]]] = []
        self.summary: dict[str, Any] | None = None

    def start(self, title: str) -> None:
        pass

    def update(self, snap: Snapshot) -> None:
        self.snapshots.append(snap)

    def log(self, message: str, level: str = "info", **fields: Any) -> None:
        self.lines.append((level, message, fields))

    def finish(self, summary: dict[str, Any]) -> None:
        self.summary = summary


class JsonReporter:
    """One JSON object per line on stdout: progress every `interval_s`, plus every log line."""

    def __init__(
        self, scrub: Scrubber, stream: TextIO | None = None, interval_s: float = 5.0
    ) -> None:
        self._scrub = scrub
        self._stream = stream or sys.stdout
        self._interval = interval_s
        self._last = 0.0
        self._lock = threading.Lock()

    def _emit(self, obj: dict[str, Any]) -> None:
        obj = {"ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **obj}
        line = self._scrub(orjson.dumps(obj, default=str).decode())
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()

    def start(self, title: str) -> None:
        self._emit({"level": "info", "event": "start", "message": title})

    def update(self, snap: Snapshot) -> None:
        now = time.monotonic()
        if now - self._last < self._interval:
            return
        self._last = now
        data = asdict(snap)
        data["events_per_s"] = round(snap.events_per_s, 1)
        data["rate_wait_s"] = round(snap.rate_wait_s, 1)
        self._emit({"level": "info", "event": "progress", **data})

    def log(self, message: str, level: str = "info", **fields: Any) -> None:
        self._emit({"level": level, "message": message, **fields})

    def finish(self, summary: dict[str, Any]) -> None:
        self._emit({"level": "info", "event": "summary", **summary})


class RichReporter:
    """A live display for people: bar, rates, ETA, endpoint, rate-limit waits and token life."""

    def __init__(self, scrub: Scrubber, console: Console | None = None) -> None:
        self._scrub = scrub
        self._console = console or Console(stderr=True)
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            console=self._console,
        )
        self._task = self._progress.add_task("events", total=None)
        self._details = Text("")
        self._live = Live(
            Group(self._progress, self._details), console=self._console, refresh_per_second=4
        )

    def start(self, title: str) -> None:
        self._console.print(self._scrub(title))
        self._live.start()

    def update(self, snap: Snapshot) -> None:
        self._progress.update(self._task, completed=snap.fetched, total=snap.total)
        grid = Table.grid(padding=(0, 2))
        grid.add_row(
            f"inserted [green]{snap.inserted:,}[/]",
            f"duplicates {snap.duplicates:,}",
            f"rejected [yellow]{snap.rejected:,}[/]",
            f"[cyan]{snap.events_per_s:,.0f}[/] events/s",
            f"ETA {fmt_duration(snap.eta_s)}",
        )
        token = "none"
        if snap.token_left_s is not None:
            token = f"{fmt_duration(snap.token_left_s)} left"
            if snap.token_origin == "supplied":
                token += " (estimated)"
        elif snap.token_origin:
            token = f"{snap.token_origin}, lifetime unknown"
        grid.add_row(
            f"endpoint [magenta]{snap.endpoint}[/]",
            f"readers {snap.readers} / ranges left {snap.ranges_left}",
            f"token {token}",
            f"429s {snap.rate_limited} (waited {fmt_duration(snap.rate_wait_s)})"
            + (f", feed paced at {snap.feed_pace:.2f}/s" if snap.feed_pace else ""),
            f"retries {snap.retries}",
        )
        rows: list[Any] = [grid]
        for w in snap.warnings:
            rows.append(Text(self._scrub(w), style="yellow"))
        self._live.update(Group(self._progress, *rows))

    def log(self, message: str, level: str = "info", **fields: Any) -> None:
        style = {"warning": "yellow", "error": "bold red"}.get(level, "dim")
        extra = " ".join(f"{k}={v}" for k, v in fields.items())
        self._console.print(Text(self._scrub(f"{message} {extra}".rstrip()), style=style))

    def finish(self, summary: dict[str, Any]) -> None:
        self._live.stop()
        table = Table(title="ingest summary", show_header=False)
        for key, value in summary.items():
            is_count = isinstance(value, int) and not isinstance(value, bool)
            shown = f"{value:,}" if is_count else value
            table.add_row(key.replace("_", " "), self._scrub(str(shown)))
        self._console.print(table)


def make_reporter(log_format: str, progress: bool, secrets: list[str]) -> Reporter:
    """Rich on a terminal in text mode, JSON lines otherwise; `--no-progress` keeps it quiet."""
    scrub = Scrubber(secrets)
    if log_format == "json":
        return JsonReporter(scrub)
    if progress and sys.stderr.isatty():
        return RichReporter(scrub)
    return TextReporter(scrub)


class TextReporter:
    """Plain lines for a person reading a log file or a terminal with --no-progress."""

    def __init__(self, scrub: Scrubber, interval_s: float = 5.0) -> None:
        self._scrub = scrub
        self._console = Console(stderr=True, highlight=False, soft_wrap=True)
        self._interval = interval_s
        self._last = 0.0

    def start(self, title: str) -> None:
        self._console.print(self._scrub(title))

    def update(self, snap: Snapshot) -> None:
        now = time.monotonic()
        if now - self._last < self._interval:
            return
        self._last = now
        total = f"/{snap.total:,}" if snap.total else ""
        self._console.print(
            f"fetched {snap.fetched:,}{total} inserted {snap.inserted:,} "
            f"rejected {snap.rejected:,} {snap.events_per_s:,.0f} events/s "
            f"ETA {fmt_duration(snap.eta_s)} endpoint {snap.endpoint} "
            f"token {fmt_duration(snap.token_left_s)}"
        )

    def log(self, message: str, level: str = "info", **fields: Any) -> None:
        extra = " ".join(f"{k}={v}" for k, v in fields.items())
        self._console.print(self._scrub(f"{message} {extra}".rstrip()))

    def finish(self, summary: dict[str, Any]) -> None:
        for key, value in summary.items():
            self._console.print(self._scrub(f"{key}: {value}"))


class ReporterLogHandler(logging.Handler):
    """Routes the package's log records (reconnects, retries) through the run's reporter, so
    they come out as JSON lines in JSON mode and scrubbed of secrets everywhere."""

    def __init__(self, reporter: Reporter) -> None:
        super().__init__(logging.INFO)
        self._reporter = reporter

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level = "warning" if record.levelno >= logging.WARNING else "info"
            self._reporter.log(record.getMessage(), level=level, source=record.name)
        except Exception:  # a log line must never break the run
            self.handleError(record)


@contextmanager
def package_logs_to(reporter: Reporter) -> Iterator[None]:
    """Route the package's log records through `reporter` while a command runs."""
    handler = ReporterLogHandler(reporter)
    package_log = logging.getLogger("datasync_cli")
    package_log.addHandler(handler)
    package_log.setLevel(logging.INFO)
    package_log.propagate = False
    try:
        yield
    finally:
        package_log.removeHandler(handler)
        package_log.propagate = True
