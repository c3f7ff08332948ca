"""SIGINT and SIGTERM raise the run's stop flag, so it can save its checkpoint and exit."""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType


class StopOnSignal:
    """SIGINT/SIGTERM raise the stop flag once; a second signal ends the process at once."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:
            os._exit(128 + signum)  # the database transaction in flight rolls back by itself
        self.signum = signum
        self.stop.set()

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
