"""Where a run starts: unfinished ranges resume; after a complete run only newer events are
read, unless the stored records fell short of the source's total."""

from __future__ import annotations

from ..display import Reporter
from ..models import Checkpoint
from ..sink import CheckpointStore, newest_plausible_ts_ms, store_stats

FIRST_RANGE = "r000"


def plan_start(store: CheckpointStore, dsn: str, reporter: Reporter) -> list[Checkpoint]:
    """The ranges this run reads (saved before it starts): resumed, newer-only, or everything."""
    checkpoints = store.load_all()
    if any(not cp.finished for cp in checkpoints):
        left = sum(1 for cp in checkpoints if not cp.finished)
        reporter.log("resuming from checkpoint", ranges_left=left)
        return checkpoints
    if not checkpoints:
        fresh = Checkpoint(range_id=FIRST_RANGE)
    else:
        stats = store_stats(dsn)
        total = stats.last_run.source_total if stats.last_run else None
        short = total - (stats.ingested + stats.rejected) if total is not None else 0
        if short > 0:
            # The source said "no more" before its own total was reached (an early end):
            # read the whole stream again; what is stored already is skipped by the database.
            fresh = Checkpoint(range_id=FIRST_RANGE)
            reporter.log(
                "previous run fell short of the source's total; reading the whole stream "
                "again (stored events are skipped)",
                level="warning",
                missing=short,
            )
        else:
            head = _previous_head(checkpoints, dsn)
            fresh = Checkpoint(range_id=FIRST_RANGE, hi_ms=None, lo_ms=head)
            reporter.log("previous run complete; reading events newer than it", lo_ms=head)
    store.save_plan([fresh], replace_all=True)
    return [fresh]


def _previous_head(checkpoints: list[Checkpoint], dsn: str) -> int | None:
    """Where the stream's head was when the previous plan began (see RangeCursor: the median of
    its first page, so one outlier cannot move it). Plans saved before the head was recorded
    fall back to the newest stored instant that is not in the future."""
    heads = [cp.head_ms for cp in checkpoints if cp.head_ms is not None]
    if heads:
        return min(heads)
    return newest_plausible_ts_ms(dsn)
