"""The page queue between readers and the writer: bounded, and readers hold back their next
request while it is full, one reader let go per page the writer takes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from datasync_cli.models import Batch, Checkpoint
from datasync_cli.pipeline.control import QUEUE_PAGES, BatchQueue, RunControl


def _batch(n: int) -> Batch:
    return Batch([], [], Checkpoint(f"r{n:03d}"), b"", 0)


def _control() -> RunControl:
    return RunControl(threading.Event(), lambda: None)


def _readers_waiting(queue: BatchQueue, count: int) -> tuple[list[threading.Thread], list[int]]:
    passed: list[int] = []

    def reader(n: int) -> None:
        queue.wait_for_room()
        passed.append(n)

    threads = [threading.Thread(target=reader, args=(n,), daemon=True) for n in range(count)]
    for thread in threads:
        thread.start()
    return threads, passed


def _settle() -> None:
    time.sleep(0.2)


def _until(check: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + 5
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    return True


def test_readers_go_on_at_once_while_there_is_room() -> None:
    queue = BatchQueue(_control())
    queue.put(_batch(0))
    threads, passed = _readers_waiting(queue, 3)
    for thread in threads:
        thread.join(2)
    assert sorted(passed) == [0, 1, 2]


def test_a_full_queue_holds_readers_back_and_each_page_taken_lets_one_go() -> None:
    queue = BatchQueue(_control())
    for n in range(QUEUE_PAGES):
        queue.put(_batch(n))
    threads, passed = _readers_waiting(queue, 3)
    _settle()
    assert passed == []
    for taken in (1, 2):
        assert queue.get(1) is not None
        assert _until(lambda: len(passed) >= taken)  # noqa: B023
        queue.put(_batch(taken))  # the reader let go brings its page: full again
        assert len(passed) == taken  # one reader per page taken, not all of them
        time.sleep(0.6)  # past the readers' periodic look at the queue
        assert len(passed) == taken
    while queue.get(0.01) is not None:
        pass
    for thread in threads:
        thread.join(2)
    assert len(passed) == 3


def test_a_stopping_run_lets_waiting_readers_go() -> None:
    control = _control()
    queue = BatchQueue(control)
    for n in range(QUEUE_PAGES):
        queue.put(_batch(n))
    threads, passed = _readers_waiting(queue, 2)
    _settle()
    control.stop.set()
    for thread in threads:
        thread.join(2)
    assert len(passed) == 2
