"""Where to cut a range so that its pieces take whole pages and about the same round trips.

Every range ends with a page of its own, usually part-filled: a request like any other. Cutting
a range anywhere would add such a page per piece; cutting it a whole number of pages below
where its reader stands keeps the part-filled page where it was, in the lowest piece. The count
between two instants is an estimate (the range's own event density), so each upper piece is
planned a little short of its pages: a piece that turns out a few events over a page boundary
would cost a whole request for those few events.
"""

from __future__ import annotations

import math

MARGIN_SHARE = 0.002  # of a piece's planned events: the estimate's error, with room to spare
MARGIN_MIN = 3  # events


def round_trips(events: float, page_size: int) -> int:
    """Requests needed to read `events` newest first, at least one."""
    return max(1, math.ceil(events / page_size - 1e-9))


def trips_per_piece(trips: int, pieces: int) -> list[int]:
    """`trips` round trips shared by `pieces` as evenly as possible, the larger shares first."""
    pieces = max(1, min(pieces, trips))
    base, extra = divmod(trips, pieces)
    return [base + 1 if i < extra else base for i in range(pieces)]


def cut_points(
    start_ms: int, floor_ms: int, density: float, page_size: int, pieces: int
) -> list[int]:
    """Instants (newest first) that cut [floor_ms, start_ms] into up to `pieces` pieces: all
    but the lowest a whole number of pages, every one about the same number of round trips.
    Empty when the range is too small to share."""
    if density <= 0 or start_ms <= floor_ms:
        return []
    events = (start_ms - floor_ms) * density
    shares = trips_per_piece(round_trips(events, page_size), pieces)
    cuts: list[int] = []
    at = float(start_ms)
    for trips in shares[:-1]:
        whole = trips * page_size
        planned = whole - max(MARGIN_MIN, whole * MARGIN_SHARE)
        at -= planned / density
        cut = math.ceil(at)  # never older than planned: the piece above holds no more
        if cut <= floor_ms or (cuts and cut >= cuts[-1]) or cut >= start_ms:
            break
        cuts.append(cut)
    return cuts
