"""How a run reports itself: a Rich display on a terminal, JSON lines elsewhere, plain lines
in a log file, nothing in tests. Every line it prints is scrubbed of secrets."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any, Protocol, TextIO

import orjson
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from ..redact import Scrubber
from .figures import (
    Snapshot,
    counts_line,
    health_line,
    progress_of,
    rate_line,
    summary_lines,
)


class Reporter(Protocol):
    def start(self, title: str) -> None: ...

    def update(self, snap: Snapshot) -> None: ...

    def log(self, message: str, level: str = "info", **fields: Any) -> None: ...

    def finish(self, summary: dict[str, Any]) -> None: ...


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
    """A live display for people: the bar of stored of total, the rate and ETA, the endpoint
    and the token's time left, the counts, and the source's health; lines fit 80 columns."""

    def __init__(self, scrub: Scrubber, console: Console | None = None) -> None:
        self._scrub = scrub
        self._console = console or Console(stderr=True)
        self._progress = Progress(
            TextColumn("[bold]stored"),
            BarColumn(bar_width=None),
            TextColumn("{task.fields[figures]}"),
            TimeElapsedColumn(),
            console=self._console,
            expand=True,
        )
        self._task = self._progress.add_task("stored", total=None, figures="")
        self._live = Live(self._progress, console=self._console, refresh_per_second=4)

    def start(self, title: str) -> None:
        self._console.print(Text(self._scrub(title)))
        self._live.start()

    def update(self, snap: Snapshot) -> None:
        total = snap.total if snap.total else None
        completed = min(snap.stored, total) if total else snap.stored
        self._progress.update(
            self._task, completed=completed, total=total, figures=progress_of(snap)
        )
        width = self._console.width
        rows: list[Any] = [
            self._progress,
            Text(rate_line(snap, width), style="cyan"),
            Text(counts_line(snap, width)),
            Text(health_line(snap, width), style="dim"),
        ]
        rows += [Text(self._scrub(w), style="yellow") for w in snap.warnings]
        self._live.update(Group(*rows))

    def log(self, message: str, level: str = "info", **fields: Any) -> None:
        style = {"warning": "yellow", "error": "bold red"}.get(level, "dim")
        extra = "" if "event" in fields else " ".join(f"{k}={v}" for k, v in fields.items())
        self._console.print(Text(self._scrub(f"{message} {extra}".rstrip()), style=style))

    def finish(self, summary: dict[str, Any]) -> None:
        self._live.stop()
        if not self._console.is_terminal:
            self._console.line()  # a live display drawn once ends without a newline
        for number, line in enumerate(summary_lines(summary, self._console.width)):
            self._console.print(Text(self._scrub(line), style="bold" if number == 0 else ""))


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
        self._console.print(f"stored {progress_of(snap)} · {rate_line(snap)}")

    def log(self, message: str, level: str = "info", **fields: Any) -> None:
        extra = "" if "event" in fields else " ".join(f"{k}={v}" for k, v in fields.items())
        self._console.print(self._scrub(f"{message} {extra}".rstrip()))

    def finish(self, summary: dict[str, Any]) -> None:
        for line in summary_lines(summary):
            self._console.print(self._scrub(line))


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
