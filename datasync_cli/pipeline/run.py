"""One ingest run: wire source, planner, sink and reporter, supervise, and account for it.

readers (one per range) -> fetch page -> transform -> queue -> writer: COPY, upsert, checkpoint
(one transaction per page) -> progress. A stop flag makes readers stop fetching; the writer
finishes the batch in flight and drops what is queued (it will be fetched again on resume).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from ..clock import Clock, SystemClock
from ..display import Reporter
from ..planner import RangePlanner
from ..redact import redact_url
from ..settings import Settings
from ..sink import CheckpointStore, CopyWriter, IngestLock, RunStatus, migrate, store_stats
from ..source import Source, SourceConfig, open_source
from .announce import endpoint_switch, token_event
from .control import BatchQueue, RunControl
from .ledger import RunLedger
from .lockwatch import LOCK_CHECK_S, LockWatch
from .metrics import RunMetrics
from .reading import Readers
from .start import plan_start
from .writing import write_batches

DISPLAY_EVERY_S = 0.25
PROGRESS_EVERY_S = 5.0  # the run's counters in ingest_runs, for `status` while it runs
READER_JOIN_S = 2.0  # readers stuck in a slow request are left behind (daemon threads)


@dataclass(frozen=True)
class IngestOutcome:
    """How a run ended; the CLI turns it into a summary and an exit status."""

    summary: dict[str, Any]
    completed: bool


def run_ingest(
    settings: Settings, reporter: Reporter, stop: threading.Event, clock: Clock | None = None
) -> IngestOutcome:
    """Migrate, take the ingest lease, read until the source is exhausted or the run stops."""
    dsn = settings.database_url
    clock = clock or SystemClock()
    migrate(dsn)
    # Every write goes through the lease (fenced), so a run that lost it cannot write.
    with IngestLock(dsn) as lock, CheckpointStore(dsn, lease=lock) as store:
        checkpoints = plan_start(store, dsn, reporter)
        ledger = RunLedger(store)
        before = store_stats(dsn)
        planner = RangePlanner(
            [cp for cp in checkpoints if not cp.finished],
            settings.page_size,
            stored_before=sum(cp.events + cp.rejected for cp in checkpoints),
        )
        control = RunControl(stop, planner.close)
        may_use_feed = bool(settings.api_key or settings.token)
        metrics = RunMetrics(
            clock,
            before.ingested + before.rejected,
            settings.page_size,
            endpoint="feed" if may_use_feed else "standard",
        )
        source = open_source(
            SourceConfig.from_settings(settings),
            clock,
            stop,
            notify=lambda name, fields: token_event(reporter, name, fields),
        )
        workers = settings.effective_workers()
        reporter.start(
            f"ingesting from {redact_url(settings.require_api())} with up to {workers} reader(s)"
        )
        batches = BatchQueue(control, workers)
        readers = Readers(
            source, planner, store, batches, control, metrics, reporter, workers
        )
        try:
            writer = CopyWriter(dsn, clock=clock, stop=stop, lease=lock)
            watch = LockWatch(lock, control, reporter)
            _run_threads(readers, writer, Supervisor(readers, watch, ledger))
        finally:
            source.close()
        return _account(ledger, readers, reporter)


class Supervisor:
    """The main thread's round, four times a second: the display, endpoint switches, the
    ingest lock, and the run's counters in ingest_runs for `status`."""

    def __init__(self, readers: Readers, watch: LockWatch, ledger: RunLedger) -> None:
        self._readers = readers
        self._watch = watch
        self._ledger = ledger
        self._next_lock_check = time.monotonic() + LOCK_CHECK_S
        self._next_progress = time.monotonic() + PROGRESS_EVERY_S

    def tick(self) -> None:
        r = self._readers
        health = r.source.health()
        snap = r.metrics.snapshot(health, r.planner.unfinished())
        for switch in r.metrics.switches():
            endpoint_switch(r.reporter, switch, health, snap, r.metrics.page_size)
        r.reporter.update(snap)
        now = time.monotonic()
        if now >= self._next_lock_check:
            self._next_lock_check = now + LOCK_CHECK_S
            self._watch.check()
        if now >= self._next_progress:
            self._next_progress = now + PROGRESS_EVERY_S
            self._ledger.progress(r.metrics.inserted, r.metrics.rejected, r.metrics.total)


def _run_threads(readers: Readers, writer: CopyWriter, supervisor: Supervisor) -> None:
    """Start the writer and the readers, then supervise until the writer is done."""
    control, source, planner = readers.control, readers.source, readers.planner
    try:
        # Checking the URL and key costs one round trip; run it beside the readers so a bad
        # setting fails fast without delaying a good run.
        threading.Thread(target=_check_source, args=(source, control), daemon=True).start()
        source.prepare()
        writer_thread = threading.Thread(
            target=write_batches,
            args=(writer, readers.batches, readers.workers, control, readers.metrics),
            name="writer",
            daemon=True,
        )
        writer_thread.start()
        threads = readers.start()
        while writer_thread.is_alive():
            writer_thread.join(DISPLAY_EVERY_S)
            supervisor.tick()
        planner.close()
        deadline = time.monotonic() + READER_JOIN_S
        for t in threads:
            t.join(max(deadline - time.monotonic(), 0.0))
    finally:
        writer.close()


def _check_source(source: Source, control: RunControl) -> None:
    try:
        source.info()
    except Exception as exc:
        control.fail(exc)


def _account(ledger: RunLedger, readers: Readers, reporter: Reporter) -> IngestOutcome:
    """Record how the run ended and build its summary; re-raise the failure that ended it."""
    control, metrics = readers.control, readers.metrics
    ranges_left = readers.planner.unfinished()
    completed = control.failure is None and not control.stopping and ranges_left == 0
    status: RunStatus = (
        "completed" if completed else ("failed" if control.failure else "interrupted")
    )
    warning = ledger.finish(
        status,
        metrics.total,
        metrics.inserted,
        metrics.rejected,
        str(control.failure) if control.failure else None,
        stopping=control.failure is not None or control.stopping,
    )
    if warning:
        reporter.log(warning, level="warning")
    health = readers.source.health()
    reporter.update(metrics.snapshot(health, ranges_left))
    if control.failure is not None:
        raise control.failure
    return IngestOutcome(metrics.summary(health, completed, ranges_left), completed)
