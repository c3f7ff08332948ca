"""The run's row in ingest_runs: started, its source total, and how it ended."""

from __future__ import annotations

import contextlib

from ..errors import DatabaseError
from ..sink import CheckpointStore, RunStatus


class RunLedger:
    """Records one run; the last word (its outcome) may be lost only when stopping anyway."""

    def __init__(self, store: CheckpointStore) -> None:
        self._store = store
        self.run_id = store.start_run(None)

    def progress(self, inserted: int, rejected: int, total: int | None) -> None:
        """Counters so far; a database that is away now is the writer's problem, not ours."""
        with contextlib.suppress(DatabaseError):
            self._store.update_run_progress(self.run_id, inserted, rejected, total)

    def finish(
        self,
        status: RunStatus,
        total: int | None,
        inserted: int,
        rejected: int,
        message: str | None,
        *,
        stopping: bool,
    ) -> str | None:
        """Record the outcome; returns a warning instead of raising when `stopping` (the
        checkpoints are intact, only the bookkeeping is missing)."""
        try:
            self._store.update_run_total(self.run_id, total)
            self._store.finish_run(self.run_id, status, inserted, rejected, message)
        except DatabaseError as exc:
            if not stopping:
                raise
            return f"could not record how the run ended: {exc}"
        return None
