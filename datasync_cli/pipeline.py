"""The ingest run: readers over disjoint time ranges feed a bounded queue drained by the writer.

readers (one per range) -> fetch page -> transform -> queue -> writer: COPY, upsert, checkpoint
(one transaction per page) -> progress. A stop flag makes readers stop fetching; the writer
finishes the batch in flight and drops what is queued (it will be fetched again on resume).
"""

from __future__ import annotations

import gc
import logging
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from .clock import Clock, SystemClock
from .errors import DatabaseError, DatasyncError, LockHeld
from .models import Batch, Checkpoint, Event, Position, RunStats
from .planner import RangePlanner, Split
from .progress import NullReporter, Reporter, ReporterLogHandler, Snapshot, token_warning
from .runtime import limit_malloc_arenas
from .settings import Settings
from .sink import CheckpointStore, CopyWriter, IngestLock, RunStatus, migrate, store_stats
from .sink.copy_format import encode_rows
from .source import Source, SourceConfig, Stopped, open_source
from .transform import transform_page

QUEUE_PAGES = 4  # pages transformed and waiting for the writer: bounds memory
FIRST_READER = "r000"
SWITCH_INTERVAL_S = 0.0005
GC_THRESHOLDS = (100_000, 50, 100)
LOCK_CHECK_S = 0.5  # a lost lock (session ended) is taken back within this
READER_JOIN_S = 2.0  # readers stuck in a slow request are left behind (daemon threads)


@dataclass
class IngestOutcome:
    """How a run ended; the CLI turns it into a summary and an exit status."""

    stats: RunStats
    completed: bool
    elapsed_s: float
    ranges_left: int


class _Done:
    """Queue sentinel: a reader has nothing more to send."""


class Ingest:
    """One ingest run against one database; owns its threads, never outlives `run()`."""

    def __init__(
        self,
        settings: Settings,
        reporter: Reporter | None = None,
        stop: threading.Event | None = None,
        clock: Clock | None = None,
        source_factory: Callable[[SourceConfig, Clock, threading.Event], Source] = open_source,
    ) -> None:
        self.settings = settings
        self.reporter: Reporter = reporter or NullReporter()
        self.stop = stop or threading.Event()
        self.clock = clock or SystemClock()
        self._source_factory = source_factory
        self.stats = RunStats()
        self._stats_lock = threading.Lock()
        self._failure: BaseException | None = None
        self._readers_active = 0
        self._endpoint = "-"
        self._rates: deque[tuple[float, int]] = deque(maxlen=120)
        self._started = time.monotonic()
        self._first_fetch_pending = True

    # -- public ---------------------------------------------------------------------------
    def run(self) -> IngestOutcome:
        # The writer spends its time in PostgreSQL with the GIL released; a short switch
        # interval lets it take the GIL back promptly from the busy readers after every call.
        limit_malloc_arenas()
        previous_interval, previous_gc = sys.getswitchinterval(), gc.get_threshold()
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        # Every page allocates tens of thousands of small dicts and none of them form cycles;
        # the default thresholds would run the cycle collector hundreds of times per page.
        gc.set_threshold(*GC_THRESHOLDS)
        dsn = self.settings.database_url
        handler = ReporterLogHandler(self.reporter)
        package_log = logging.getLogger("datasync_cli")
        package_log.addHandler(handler)
        package_log.setLevel(logging.INFO)
        package_log.propagate = False
        try:
            migrate(dsn)
            with IngestLock(dsn) as lock:
                return self._run_locked(dsn, lock)
        finally:
            package_log.removeHandler(handler)
            package_log.propagate = True
            sys.setswitchinterval(previous_interval)
            gc.set_threshold(*previous_gc)

    # -- orchestration ----------------------------------------------------------------------
    def _run_locked(self, dsn: str, lock: IngestLock) -> IngestOutcome:
        started = self._started = time.monotonic()
        store = CheckpointStore(dsn)
        checkpoints = self._plan_start(store, dsn)
        source = self._source_factory(
            SourceConfig.from_settings(self.settings), self.clock, self.stop
        )
        run_id = store.start_run(None)
        workers = self.settings.effective_workers()
        planner = RangePlanner(
            [cp for cp in checkpoints if not cp.finished],
            None,
            self.settings.page_size,
            stored_before=sum(cp.events + cp.rejected for cp in checkpoints),
        )
        pages: queue.Queue[Batch | _Done] = queue.Queue(maxsize=QUEUE_PAGES)
        writer = CopyWriter(dsn, writer_id=0, clock=self.clock, stop=self.stop)
        self.reporter.start(
            f"ingesting from {self.settings.api_url} with up to {workers} reader(s)"
        )
        try:
            # Checking the URL and key costs one round trip; run it beside the readers so a bad
            # setting fails fast without delaying a good run.
            threading.Thread(target=self._check_source, args=(source, planner), daemon=True).start()
            source.prepare()
            threads = [
                threading.Thread(
                    target=self._reader_loop,
                    args=(source, planner, store, pages, workers),
                    name=f"reader-{i}",
                    daemon=True,
                )
                for i in range(workers)
            ]
            writer_thread = threading.Thread(
                target=self._writer_loop, args=(writer, pages, workers), name="writer", daemon=True
            )
            writer_thread.start()
            for t in threads:
                t.start()
            next_lock_check = time.monotonic() + LOCK_CHECK_S
            while writer_thread.is_alive():
                writer_thread.join(0.25)
                self.reporter.update(self._snapshot(source, planner))
                if time.monotonic() >= next_lock_check:
                    next_lock_check = time.monotonic() + LOCK_CHECK_S
                    self._check_lock(lock, planner)
            planner.close()
            deadline = time.monotonic() + READER_JOIN_S
            for t in threads:
                t.join(max(deadline - time.monotonic(), 0.0))
        finally:
            health = source.stats()
            self.stats.retries = health.retries
            self.stats.rate_limited = health.rate_limited
            self.stats.rate_wait_s = health.rate_wait_s
            writer.close()
            source.close()
        ranges_left = planner.unfinished()
        completed = self._failure is None and not self.stop.is_set() and ranges_left == 0
        status: RunStatus = (
            "completed" if completed else ("failed" if self._failure else "interrupted")
        )
        try:
            store.update_run_total(run_id, self.stats.total)
            store.finish_run(
                run_id,
                status,
                self.stats.inserted,
                self.stats.rejected,
                str(self._failure) if self._failure else None,
            )
        except DatabaseError as exc:
            if self._failure is None and not self.stop.is_set():
                raise
            # Stopping anyway (a signal, or an earlier failure that says more): the checkpoints
            # are intact; only the run's bookkeeping is missing.
            self.reporter.log(f"could not record how the run ended: {exc}", level="warning")
        self.reporter.update(self._snapshot(source, planner))
        if self._failure is not None:
            raise self._failure
        return IngestOutcome(self.stats, completed, time.monotonic() - started, ranges_left)

    def _plan_start(self, store: CheckpointStore, dsn: str) -> list[Checkpoint]:
        """Resume unfinished ranges; after a finished run, read only what is newer."""
        checkpoints = store.load_all()
        if checkpoints and any(not cp.finished for cp in checkpoints):
            left = sum(1 for cp in checkpoints if not cp.finished)
            self.reporter.log("resuming from checkpoint", ranges_left=left)
            return checkpoints
        if checkpoints:
            stats = store_stats(dsn)
            total = stats.last_run.source_total if stats.last_run else None
            short = total - (stats.ingested + stats.rejected) if total is not None else 0
            if short > 0:
                # The source said "no more" before its own total was reached (an early end):
                # read the whole stream again; what is stored already is skipped by the database.
                fresh = Checkpoint(reader_id=FIRST_READER)
                self.reporter.log(
                    "previous run fell short of the source's total; reading the whole stream "
                    "again (stored events are skipped)",
                    level="warning",
                    missing=short,
                )
            else:
                fresh = Checkpoint(reader_id=FIRST_READER, hi_ms=None, lo_ms=stats.max_ts_ms)
                self.reporter.log(
                    "previous run complete; reading events newer than it", lo_ms=stats.max_ts_ms
                )
        else:
            fresh = Checkpoint(reader_id=FIRST_READER)
        store.save_plan([fresh], replace_all=True)
        return [fresh]

    def _check_lock(self, lock: IngestLock, planner: RangePlanner) -> None:
        """Two ingests must never write at once: if our lock's session died (a restart, a
        terminated backend), take the lock again or stop."""
        try:
            if lock.reassert():
                self.reporter.log("the ingest lock's database session ended; lock taken again",
                                  level="warning")
        except LockHeld as exc:
            self._fail(
                LockHeld(
                    "lost the ingest lock and another datasync ingest now holds it; stopping",
                    exc.hint,
                ),
                planner,
            )
        except DatabaseError:
            pass  # the server is away; the writer reconnects, and the next check tries again

    def _check_source(self, source: Source, planner: RangePlanner) -> None:
        try:
            source.info()
        except Exception as exc:
            self._fail(exc, planner)

    # -- readers --------------------------------------------------------------------------
    def _reader_loop(
        self,
        source: Source,
        planner: RangePlanner,
        store: CheckpointStore,
        pages: queue.Queue[Batch | _Done],
        workers: int,
    ) -> None:
        def persist(split: Split) -> None:
            store.split_range(split.victim_id, split.victim_lo_ms, split.new_ranges)
            self.reporter.log(
                "split range",
                victim=split.victim_id,
                new=",".join(cp.reader_id for cp in split.new_ranges),
            )

        try:
            while not self.stop.is_set():
                idle = max(workers - self._readers_active, 1)
                cp = planner.next_range(persist, idle_readers=idle)
                if cp is None:
                    break
                with self._stats_lock:
                    self._readers_active += 1
                try:
                    self._read_range(source, planner, cp, pages)
                finally:
                    with self._stats_lock:
                        self._readers_active -= 1
        except DatasyncError as exc:
            self._fail(exc, planner)
        except Exception as exc:  # a bug must stop the run, not hang it
            self._fail(exc, planner)
        finally:
            self._offer(pages, _Done())

    def _read_range(
        self,
        source: Source,
        planner: RangePlanner,
        cp: Checkpoint,
        pages: queue.Queue[Batch | _Done],
    ) -> None:
        reader = source.reader()
        try:
            while not self.stop.is_set():
                lo, hi = planner.bounds(cp.reader_id)
                cp = replace(cp, lo_ms=lo, hi_ms=hi)
                # The run's first page need not wait for the stream token being issued, unless
                # the range has a floor: the standard endpoint cannot stop there, the feed can.
                early = self._claim_first_fetch() and lo is None
                page = reader.fetch(cp, wait_for_token=not early)
                if page.total is not None:
                    planner.set_total(page.total)
                    with self._stats_lock:
                        self.stats.total = page.total
                events, rejected = transform_page(page.records)
                kept, below = _within(events, lo, hi)
                last = events[-1] if events else None
                position = Position(last.ts_us // 1000, last.id) if last else cp.position
                finished = below or not page.has_more
                cp = replace(
                    cp,
                    cursor=page.next_cursor,
                    endpoint=page.endpoint,
                    position=position,
                    events=cp.events + len(kept),
                    rejected=cp.rejected + len(rejected),
                    finished=finished,
                )
                self._endpoint = page.endpoint
                if events:
                    planner.observe(
                        cp.reader_id, events[0].ts_us // 1000, events[-1].ts_us // 1000, len(events)
                    )
                batch = Batch(
                    kept, rejected, cp, fetched=len(page.records), copy_rows=encode_rows(kept, 0)
                )
                del page, events, kept, rejected  # only the batch waits in the queue
                self._offer(pages, batch)
                if finished:
                    planner.finish(cp.reader_id)
                    return
        finally:
            if not cp.finished:
                planner.release(cp.reader_id)

    def _claim_first_fetch(self) -> bool:
        with self._stats_lock:
            first, self._first_fetch_pending = self._first_fetch_pending, False
            return first

    def _offer(self, pages: queue.Queue[Batch | _Done], item: Batch | _Done) -> None:
        """Wait for room in the queue, giving up when the run is stopping."""
        while True:
            try:
                pages.put(item, timeout=0.5)
                return
            except queue.Full:
                if self.stop.is_set():
                    return

    # -- writer ---------------------------------------------------------------------------
    def _writer_loop(
        self, writer: CopyWriter, pages: queue.Queue[Batch | _Done], readers: int
    ) -> None:
        done = 0
        try:
            while done < readers:
                try:
                    item = pages.get(timeout=0.25)
                except queue.Empty:
                    if self.stop.is_set():
                        break  # readers may be stuck in a slow request: do not wait for them
                    continue
                if isinstance(item, _Done):
                    done += 1
                    continue
                if self.stop.is_set():
                    break  # queued pages are dropped; they are fetched again on resume
                result = writer.write(item)
                with self._stats_lock:
                    s = self.stats
                    s.pages += 1
                    s.fetched += item.fetched
                    s.inserted += result.inserted
                    s.duplicates += len(item.events) - result.inserted
                    s.rejected += result.rejected_new
                    ep = item.checkpoint.endpoint or "-"
                    s.endpoint_pages[ep] = s.endpoint_pages.get(ep, 0) + 1
                    self._rates.append((time.monotonic(), s.fetched))
        except BaseException as exc:
            self._fail(exc, None)

    # -- helpers --------------------------------------------------------------------------
    def _fail(self, exc: BaseException, planner: RangePlanner | None) -> None:
        with self._stats_lock:
            if self._failure is None and not (self.stop.is_set() and _is_stop_noise(exc)):
                self._failure = exc
        self.stop.set()
        if planner is not None:
            planner.close()

    def _snapshot(self, source: Source, planner: RangePlanner) -> Snapshot:
        with self._stats_lock:
            s = self.stats
            rate = _rate(self._rates)
            snap = Snapshot(
                fetched=s.fetched,
                inserted=s.inserted,
                duplicates=s.duplicates,
                rejected=s.rejected,
                total=s.total,
                events_per_s=rate,
                readers=self._readers_active,
                pages=s.pages,
                endpoint=self._endpoint,
                elapsed_s=round(time.monotonic() - self._started, 1),
            )
        if snap.total and rate > 0:
            snap.eta_s = max(snap.total - snap.fetched, 0) / rate
        snap.ranges_left = planner.unfinished()
        health = source.stats()
        snap.retries = health.retries
        snap.rate_limited = health.rate_limited
        snap.rate_wait_s = health.rate_wait_s
        snap.token_left_s = health.token_seconds_left
        snap.token_origin = health.token_origin
        snap.feed_pace = round(health.feed_rate, 3) if health.feed_rate else None
        if health.token_problem:
            snap.warnings.append(f"stream token: {health.token_problem}")
        warning = token_warning(snap)
        if warning:
            snap.warnings.append(warning)
        return snap


def _within(events: list[Event], lo: int | None, hi: int | None) -> tuple[list[Event], bool]:
    """Events inside [lo, hi] (inclusive, ms) and whether the page went below the range."""
    if lo is None and hi is None:
        return events, False
    lo_us = lo * 1000 if lo is not None else None
    hi_us = (hi + 1) * 1000 if hi is not None else None
    kept = [
        e
        for e in events
        if (lo_us is None or e.ts_us >= lo_us) and (hi_us is None or e.ts_us < hi_us)
    ]
    below = lo_us is not None and any(e.ts_us < lo_us for e in events)
    return kept, below


def _rate(samples: deque[tuple[float, int]], window_s: float = 30.0) -> float:
    """Events per second over the recent window, so the ETA follows current conditions."""
    if len(samples) < 2:
        return 0.0
    t_end, n_end = samples[-1]
    t_start, n_start = next((s for s in samples if t_end - s[0] <= window_s), samples[0])
    span = t_end - t_start
    return (n_end - n_start) / span if span > 0 else 0.0


def _is_stop_noise(exc: BaseException) -> bool:
    """Errors that only say the stop flag interrupted a wait or a connection."""
    return isinstance(exc, (Stopped, DatasyncError))


def summary(outcome: IngestOutcome) -> dict[str, Any]:
    """The end-of-run figures, in the order an operator reads them."""
    s = outcome.stats
    return {
        "status": "complete" if outcome.completed else "incomplete",
        "fetched": s.fetched,
        "inserted": s.inserted,
        "duplicates": s.duplicates,
        "rejected": s.rejected,
        "source_total": s.total,
        "pages": s.pages,
        "pages_by_endpoint": dict(s.endpoint_pages),
        "retries": s.retries,
        "rate_limited": s.rate_limited,
        "rate_wait_s": round(s.rate_wait_s, 1),
        "elapsed_s": round(outcome.elapsed_s, 1),
        "events_per_s": round(s.fetched / outcome.elapsed_s, 1) if outcome.elapsed_s else 0,
        "ranges_left": outcome.ranges_left,
    }
