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
from ..settings import Settings
from ..sink import CheckpointStore, CopyWriter, IngestLock, RunStatus, migrate
from ..source import Source, SourceConfig, open_source
from .control import BatchQueue, RunControl
from .ledger import RunLedger
from .lockwatch import LOCK_CHECK_S, LockWatch
from .metrics import RunMetrics
from .reading import Readers
from .start import plan_start
from .writing import write_batches

DISPLAY_EVERY_S = 0.25
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
    migrate(dsn)
    # Every write goes through the lease (fenced), so a run that lost it cannot write.
    with IngestLock(dsn) as lock, CheckpointStore(dsn, lease=lock) as store:
        checkpoints = plan_start(store, dsn, reporter)
        ledger = RunLedger(store)
        planner = RangePlanner(
            [cp for cp in checkpoints if not cp.finished],
            settings.page_size,
            stored_before=sum(cp.events + cp.rejected for cp in checkpoints),
        )
        control = RunControl(stop, planner.close)
        metrics = RunMetrics(clock or SystemClock())
        source = open_source(SourceConfig.from_settings(settings), clock or SystemClock(), stop)
        workers = settings.effective_workers()
        reporter.start(f"ingesting from {settings.api_url} with up to {workers} reader(s)")
        readers = Readers(
            source, planner, store, BatchQueue(control), control, metrics, reporter, workers
        )
        try:
            _run_threads(readers, CopyWriter(dsn, clock=clock, stop=stop, lease=lock), lock)
        finally:
            source.close()
        return _account(ledger, readers, reporter)


def _run_threads(readers: Readers, writer: CopyWriter, lock: IngestLock) -> None:
    """Start the writer and the readers, then show progress and renew the lease until done."""
    control, source, planner = readers.control, readers.source, readers.planner
    watch = LockWatch(lock, control, readers.reporter)
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
        next_lock_check = time.monotonic() + LOCK_CHECK_S
        while writer_thread.is_alive():
            writer_thread.join(DISPLAY_EVERY_S)
            readers.reporter.update(readers.metrics.snapshot(source.health(), planner.unfinished()))
            if time.monotonic() >= next_lock_check:
                next_lock_check = time.monotonic() + LOCK_CHECK_S
                watch.check()
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
    return IngestOutcome(
        metrics.summary(health, completed, metrics.elapsed_s(), ranges_left), completed
    )
