"""Reader threads: take a range from the planner, read it page by page, queue what to store."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from ..display import Reporter
from ..models import Batch
from ..planner import RangePlanner, Split
from ..sink import CheckpointStore
from ..sink.copy_format import make_batch
from ..source import RangeCursor, RangeReader, Source
from ..transform import transform_page
from .control import BatchQueue, ReaderDone, RunControl
from .metrics import RunMetrics


@dataclass
class Readers:
    """Everything the reader threads share."""

    source: Source
    planner: RangePlanner
    store: CheckpointStore
    batches: BatchQueue
    control: RunControl
    metrics: RunMetrics
    reporter: Reporter
    workers: int

    def __post_init__(self) -> None:
        self._first_fetch = threading.Lock()
        self._first_fetch_pending = True

    def start(self) -> list[threading.Thread]:
        threads = [
            threading.Thread(target=self.run, name=f"reader-{i}", daemon=True)
            for i in range(self.workers)
        ]
        for thread in threads:
            thread.start()
        return threads

    def run(self) -> None:
        """One reader thread: ranges until none is left, the run stops, or something fails."""
        try:
            while not self.control.stopping:
                idle = max(self.workers - self.metrics.readers_active, 1)
                checkpoint = self.planner.next_range(
                    self._persist_split, idle_readers=idle, lanes=self.source.lanes()
                )
                if checkpoint is None:
                    break
                self.metrics.reader_started()
                try:
                    self._read_range(RangeCursor(checkpoint))
                finally:
                    self.metrics.reader_stopped()
        except Exception as exc:  # a bug must stop the run, not hang it
            self.control.fail(exc)
        finally:
            self.batches.put(ReaderDone())

    def _persist_split(self, split: Split) -> None:
        self.store.split_range(split.parent_id, split.parent_lo_ms, split.new_ranges)
        new = ", ".join(cp.range_id for cp in split.new_ranges)
        self.reporter.log(f"range {split.parent_id} shared with idle readers as {new}")

    def _read_range(self, cursor: RangeCursor) -> None:
        reader = self.source.reader()
        try:
            while not self.control.stopping:
                self.batches.wait_for_room()
                try:
                    self.batches.put(self._next_batch(reader, cursor))
                finally:
                    # The page is queued (or gone): its parse and fetch slots go to the next
                    # reader, so only a few pages are ever held outside the bounded queue.
                    self.source.page_done()
                    self.batches.fetch_done()
                if cursor.checkpoint.finished:
                    self.planner.finish(cursor.range_id)
                    return
        finally:
            if not cursor.checkpoint.finished:
                self.planner.release(cursor.range_id)

    def _next_batch(self, reader: RangeReader, cursor: RangeCursor) -> Batch:
        """Fetch the range's next page and turn it into the batch that stores it."""
        lo, hi = self.planner.bounds(cursor.range_id)
        cursor.bound(lo, hi)
        # The run's first page need not wait for the stream token being issued, unless the
        # range has a floor: the standard endpoint cannot stop there, the feed can.
        early = self._claim_first_fetch() and lo is None
        # The feed's pace stays under the measured rate in the run's last round trips.
        self.source.throttle.run_left(self.planner.pages_left_in_all())
        page = reader.fetch(
            cursor,
            wait_for_token=not early,
            priority=self.planner.pages_left(cursor.range_id),
        )
        if page.total is not None:
            self.planner.set_total(page.total)
        # finite: decoded bodies never hold a NaN or infinite float (see Page).
        events, rejected = transform_page(page.records, finite=True)
        step = cursor.advance(page, events, len(rejected))
        self.metrics.page_fetched(
            page.endpoint,
            page.total,
            len(step.outside),
            self.source.tokens.usable(),
            early=early and page.endpoint == "standard",
        )
        if events:
            self.planner.observe(
                cursor.range_id, events[0].ts_us // 1000, events[-1].ts_us // 1000, len(events)
            )
        # Events outside the range are stored too (most are duplicates of a neighbour's):
        # nothing the source sends is dropped unaccounted.
        return make_batch(events, rejected, step.checkpoint, len(page.records))

    def _claim_first_fetch(self) -> bool:
        with self._first_fetch:
            first, self._first_fetch_pending = self._first_fetch_pending, False
            return first
