"""Two ingests must never write at once: the run keeps checking that it still holds the lock."""

from __future__ import annotations

from ..display import Reporter
from ..errors import DatabaseError, LockHeldError
from ..sink import IngestLock
from .control import RunControl

LOCK_CHECK_S = 0.5  # a lost lock (session ended) is taken back within this


class LockWatch:
    """If the lock's session died (a restart, a terminated backend), take the lock again, or
    stop the run when another ingest got there first."""

    def __init__(self, lock: IngestLock, control: RunControl, reporter: Reporter) -> None:
        self._lock = lock
        self._control = control
        self._reporter = reporter

    def check(self) -> None:
        try:
            if self._lock.reassert():
                self._reporter.log(
                    "the ingest lock's database session ended; lock taken again", level="warning"
                )
        except LockHeldError as exc:
            self._control.fail(
                LockHeldError(
                    "lost the ingest lock and another datasync ingest now holds it; stopping",
                    exc.hint,
                )
            )
        except DatabaseError:
            pass  # the server is away; the writer reconnects, and the next check tries again
