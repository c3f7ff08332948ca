"""Two ingests must never write at once: the run renews its lease and stops when it lost it.

The writes themselves are fenced by the lease (sink/lock.py), so a heartbeat that comes late
costs nothing but the lease's expiry; the heartbeat runs beside the main loop so that the
display and the signal handlers never wait on the database.
"""

from __future__ import annotations

import threading
import time

from ..display import Reporter
from ..errors import DatabaseError, LockHeldError
from ..sink import LEASE_HEARTBEAT_S, LEASE_LAPSED, LEASE_TTL_S, IngestLock
from .control import RunControl

LOCK_CHECK_S = 0.5  # how often the main loop looks in; a renewal starts every LEASE_HEARTBEAT_S


class LockWatch:
    """Renew the lease every `heartbeat_s`, one renewal at a time in its own thread; stop the
    run when another ingest holds the lease now. An unreachable database is retried at the
    next beat (the lease lasts LEASE_TTL_S; the writer's own fence decides whether it may
    still write)."""

    def __init__(
        self,
        lock: IngestLock,
        control: RunControl,
        reporter: Reporter,
        heartbeat_s: float = LEASE_HEARTBEAT_S,
    ) -> None:
        self._lock = lock
        self._control = control
        self._reporter = reporter
        self._heartbeat_s = heartbeat_s
        self._next_beat = time.monotonic() + heartbeat_s
        self._beat: threading.Thread | None = None
        self._renewed_at = time.monotonic()  # the lease was taken (renewed) just before
        self._warned = False

    def check(self) -> None:
        """Start a renewal when one is due and none is in flight; never waits."""
        now = time.monotonic()
        if now < self._next_beat or (self._beat is not None and self._beat.is_alive()):
            return
        self._next_beat = now + self._heartbeat_s
        self._beat = threading.Thread(target=self.renew, name="lease-heartbeat", daemon=True)
        self._beat.start()

    def renew(self) -> None:
        try:
            lapsed = self._lock.reassert()
        except LockHeldError as exc:
            self._control.fail(exc)
            return
        except DatabaseError as exc:
            # The server is away: the writer reconnects, and the next beat tries again.
            self._failing(exc)
            return
        self._renewed_at, self._warned = time.monotonic(), False
        if lapsed:
            self._reporter.log(LEASE_LAPSED, level="warning")

    def _failing(self, exc: DatabaseError) -> None:
        """Say once per outage that the lease is running out, and what follows."""
        failing_s = time.monotonic() - self._renewed_at
        if self._warned or failing_s < LEASE_TTL_S / 2:
            return
        self._warned = True
        self._reporter.log(
            f"could not renew the ingest lease for {failing_s:.0f} s ({exc.message}); "
            f"{LEASE_TTL_S:.0f} s after its last renewal another ingest may take it over, "
            "and this run's writes are then refused",
            level="warning",
        )
