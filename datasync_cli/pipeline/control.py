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
_MAX_SLOTS = 64  # fetch slots when the number of readers is not given


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
    """Pages on their way from the readers to the writer; at most QUEUE_PAGES wait.

    It also paces the fetching: a reader takes a fetch slot before each request and gives it
    back once its page is queued (or lost). The slots follow the writer: one fewer each time a
    page finds the queue full (the source is faster than the writer), one more each time the
    writer finds it empty (the writer is waiting for the source). With a slow source the writer
    always waits and every reader fetches; with a fast one a request or two in flight keep the
    writer fed, and more would only take CPU from it and from the database (eight readers were
    a tenth slower than one against a local simulator)."""

    def __init__(self, control: RunControl, readers: int = _MAX_SLOTS) -> None:
        self._control = control
        self._queue: queue.Queue[Batch | ReaderDone] = queue.Queue(maxsize=QUEUE_PAGES)
        self._room = threading.Condition()
        self._fetching = 0
        self._most_slots = max(1, readers)
        self.slots = self._most_slots

    def wait_for_room(self) -> None:
        """Before a reader sends its next request: wait while the queue is full or the fetch
        slots are taken, then take one (give it back with `fetch_done`). When the writer is
        the bottleneck readers then fetch about as fast as it writes; when the source is slow
        the queue is never full and nothing waits here."""
        with self._room:
            while (
                self._queue.full() or self._fetching >= self.slots
            ) and not self._control.stopping:
                self._room.wait(_PUT_WAIT_S)
            self._fetching += 1

    def fetch_done(self) -> None:
        """A reader's page is queued, or lost: its fetch slot goes to the next reader."""
        with self._room:
            self._fetching -= 1
            self._room.notify()

    def put(self, item: Batch | ReaderDone) -> None:
        """Wait for room, giving up when the run is stopping (the page is fetched again)."""
        if self._queue.full():
            with self._room:
                self.slots = max(1, self.slots - 1)
        while True:
            try:
                self._queue.put(item, timeout=_PUT_WAIT_S)
                return
            except queue.Full:
                if self._control.stopping:
                    return

    def get(self, timeout: float) -> Batch | ReaderDone | None:
        starved = self._queue.empty()
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            item = None
        with self._room:
            if starved:
                self.slots = min(self._most_slots, self.slots + 1)
            self._room.notify()
        return item


