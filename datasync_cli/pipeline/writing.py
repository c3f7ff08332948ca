"""The writer thread: one transaction per page (rows, rejects, checkpoint), in arrival order."""

from __future__ import annotations

from ..sink import CopyWriter
from .control import BatchQueue, ReaderDone, RunControl
from .metrics import RunMetrics

_GET_WAIT_S = 0.25


def write_batches(
    writer: CopyWriter, batches: BatchQueue, readers: int, control: RunControl,
    metrics: RunMetrics,
) -> None:
    """Drain the queue until every reader is done; on stop, queued pages are dropped (they
    are fetched again on resume) and readers stuck in a slow request are not waited for."""
    done = 0
    try:
        while done < readers:
            item = batches.get(_GET_WAIT_S)
            if item is None:
                if control.stopping:
                    break
                continue
            if isinstance(item, ReaderDone):
                done += 1
                continue
            if control.stopping:
                break
            metrics.batch_written(item, writer.write(item))
    except BaseException as exc:
        control.fail(exc)
