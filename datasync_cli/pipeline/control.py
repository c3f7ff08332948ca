"""What the run's threads share: the stop flag, the first failure, and the bounded page queue."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from ..errors import DatasyncError
from ..models import Batch
from ..source import StopRequestedError

QUEUE_PAGES = 4  # pages transformed and waiting for the writer: bounds memory
_PUT_WAIT_S = 0.5


class ReaderDone:
    """Queue sentinel: a reader has nothing more to send."""


class RunControl:
    """The stop flag and the first failure; any thread may fail the run, which stops it."""

    def __init__(self, stop: threading.Event, on_failure: Callable[[], None]) -> None:
        self.stop = stop
        self._on_failure = on_failure
        self._lock = threading.Lock()
        self.failure: BaseException | None = None

    def fail(self, exc: BaseException) -> None:
        with self._lock:
            # Errors that only say the stop flag interrupted a wait or a connection add nothing.
            noise = self.stop.is_set() and isinstance(exc, (StopRequestedError, DatasyncError))
            if self.failure is None and not noise:
                self.failure = exc
        self.stop.set()
        self._on_failure()

    @property
    def stopping(self) -> bool:
        return self.stop.is_set()


class BatchQueue:
    """Pages on their way from the readers to the writer; at most QUEUE_PAGES wait."""

    def __init__(self, control: RunControl) -> None:
        self._control = control
        self._queue: queue.Queue[Batch | ReaderDone] = queue.Queue(maxsize=QUEUE_PAGES)
        self._room = threading.Condition()

    def wait_for_room(self) -> None:
        """Before a reader sends its next request: while the queue is full, wait until the
        writer takes a page, one reader per page taken. When the writer is the bottleneck
        (a fast source), readers then fetch about as fast as it writes, instead of all of
        them fetching pages that would only wait in memory and take CPU from the writer;
        when the source is slow the queue is never full and nothing waits here."""
        with self._room:
            while self._queue.full() and not self._control.stopping:
                self._room.wait(_PUT_WAIT_S)

    def put(self, item: Batch | ReaderDone) -> None:
        """Wait for room, giving up when the run is stopping (the page is fetched again)."""
        while True:
            try:
                self._queue.put(item, timeout=_PUT_WAIT_S)
                return
            except queue.Full:
                if self._control.stopping:
                    return

    def get(self, timeout: float) -> Batch | ReaderDone | None:
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
        with self._room:
            self._room.notify()
        return item
