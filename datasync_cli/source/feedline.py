"""Feed requests waiting for a slot (who goes first) and on their way (since when)."""

from __future__ import annotations

import bisect
import itertools


class WaitingLine:
    """Readers waiting to send, each with a priority (how much its range has left).

    The first in line is the one with the highest priority, ties in order of arrival. Serving
    the range with the most left first makes ranges end together: a range can have only one
    request in flight, so one left far behind would be read page after page at the end.
    Not thread-safe on its own: the throttle's lock guards it.
    """

    def __init__(self) -> None:
        self._waiting: dict[int, float] = {}
        self._tickets = itertools.count()

    def join(self, priority: float) -> int:
        """Join the line; returns the ticket to leave it with."""
        ticket = next(self._tickets)
        self._waiting[ticket] = priority
        return ticket

    def leave(self, ticket: int) -> None:
        self._waiting.pop(ticket, None)

    def first(self, ticket: int) -> bool:
        """Whether `ticket` is first in line (a ticket not in line never is)."""
        mine = self._waiting.get(ticket)
        if mine is None:
            return False
        return all(p < mine or (p == mine and t >= ticket) for t, p in self._waiting.items())


class InFlight:
    """The send times of the requests on their way. Not thread-safe on its own."""

    def __init__(self) -> None:
        self._sent: list[float] = []

    def __len__(self) -> int:
        return len(self._sent)

    def add(self, at: float) -> None:
        bisect.insort(self._sent, at)

    def landed(self, sent_at: float | None) -> None:
        """The request sent at `sent_at` (the oldest, if unknown) is no longer on its way."""
        if not self._sent:
            return
        i = 0
        if sent_at is not None:  # the nearest send time recorded
            i = min(bisect.bisect_left(self._sent, sent_at), len(self._sent) - 1)
            if i > 0 and sent_at - self._sent[i - 1] <= abs(self._sent[i] - sent_at):
                i -= 1
        self._sent.pop(i)

    def oldest(self, otherwise: float) -> float:
        """When the oldest request on its way was sent (`otherwise` if none is)."""
        return self._sent[0] if self._sent else otherwise
