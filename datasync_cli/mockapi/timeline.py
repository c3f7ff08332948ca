"""Where each event sits in the stream: its timestamp and id as pure functions of its index.

Index 0 is the newest event. Timestamps never increase with the index; about one event in five
shares the millisecond of the one before it (runs of several happen, also across page
boundaries). Among equal timestamps events are ordered by id ascending, so a position
(timestamp, id) maps back to an index by binary search, never by a scan.
"""

from __future__ import annotations

from .mix import M48, M64, P1, P2, Perm48, derive_key

NEWEST_MS = 1_769_541_612_369  # 2026-01-27T19:20:12.369Z
SPAN_MS = 30 * 86_400_000  # the live dataset covers about 30 days

_TIE_BELOW = 52  # of 256: the share of events tied with their predecessor
_GROUP_BREAK = 3  # an index with index % 8 == 3 never ties back, so a tie group has <= 8 events
_H1 = 0x9E3779B97F4A7C15
_H2 = 0xBF58476D1CE4E5B9
_H3 = 0xD6E8FEB86659FD93


def uuid_text(hi48: int, lo64: int) -> str:
    """A version-4-shaped UUID whose first 48 bits are `hi48` (so they can be decoded again)."""
    x = (hi48 << 80) | (0x4 << 76) | ((lo64 & 0xFFF) << 64) | (0b10 << 62) | (lo64 >> 2)
    s = x.to_bytes(16, "big").hex()
    return f"{s[:8]}-{s[8:12]}-{s[12:16]}-{s[16:20]}-{s[20:]}"


def _ts_hash(key: int, j: int) -> int:
    # Must stay identical to the inlined copy in Timeline.span.
    h = ((key + j) * _H1) & M64
    h ^= h >> 29
    h = (h * _H2) & M64
    return h ^ (h >> 32)


class Timeline:
    """Timestamps and ids of `size` events derived from `seed`; holds nothing per event."""

    def __init__(self, seed: int, size: int) -> None:
        self.size = size
        self._k_ts = derive_key(seed, "ts")
        self._k_id = derive_key(seed, "id")
        self._perm = Perm48(derive_key(seed, "perm"))
        # Jitter below SPAN - size keeps base timestamps strictly decreasing (no accidental ties).
        self._jitter = max(1, SPAN_MS - size)
        self._divisor = max(1, size)

    # --- per index -------------------------------------------------------------------------

    def _tied(self, i: int) -> bool:
        """Whether event i has the same timestamp as event i - 1."""
        if i <= 0 or i & 7 == _GROUP_BREAK:
            return False
        return _ts_hash(self._k_ts, i) & 0xFF < _TIE_BELOW

    def _base(self, i: int) -> int:
        jitter = (_ts_hash(self._k_ts, i) >> 8) % self._jitter
        return NEWEST_MS - (i * SPAN_MS + jitter) // self._divisor

    def _anchor(self, i: int) -> int:
        while self._tied(i):
            i -= 1
        return i

    def _group_end(self, i: int) -> int:
        i += 1
        while i < self.size and self._tied(i):
            i += 1
        return i

    def raw_id(self, j: int) -> str:
        """The id generated for index j before ids are sorted within a tie group."""
        hi = self._perm.forward(j)
        lo = ((hi ^ self._k_id) * _H3) & M64
        return uuid_text(hi, lo ^ (lo >> 32))

    def ts(self, i: int) -> int:
        return self._base(self._anchor(i))

    def event_id(self, i: int) -> str:
        g0, g1 = self._anchor(i), self._group_end(i)
        if g1 - g0 == 1:
            return self.raw_id(i)
        return sorted(self.raw_id(j) for j in range(g0, g1))[i - g0]

    # --- ranges ----------------------------------------------------------------------------

    def span(self, start: int, stop: int) -> tuple[list[int], list[str]]:
        """Timestamps and ids of indices [start, stop), computed group by group.

        The hashes of _ts_hash, Perm48.forward and raw_id are inlined: this loop is the
        simulator's hot path.
        """
        if start >= stop:
            return [], []
        g0, g1 = self._anchor(start), self._group_end(stop - 1)
        k_ts, jitter, divisor, k_id = self._k_ts, self._jitter, self._divisor, self._k_id
        k_in, k_out = self._perm.keys
        stamps: list[int] = []
        ids: list[str] = []
        group: list[str] = []
        group_ts = 0
        for j in range(g0, g1):
            h = ((k_ts + j) * _H1) & M64
            h ^= h >> 29
            h = (h * _H2) & M64
            h ^= h >> 32
            if j == 0 or j & 7 == _GROUP_BREAK or h & 0xFF >= _TIE_BELOW:
                if group:
                    if len(group) > 1:
                        group.sort()
                    ids.extend(group)
                    stamps.extend([group_ts] * len(group))
                    group = []
                group_ts = NEWEST_MS - (j * SPAN_MS + (h >> 8) % jitter) // divisor
            hi = ((j + k_in) * P1) & M48
            hi ^= hi >> 24
            hi = (hi * P2) & M48
            hi ^= hi >> 24
            hi = ((hi * P1) & M48) ^ k_out
            lo = ((hi ^ k_id) * _H3) & M64
            lo ^= lo >> 32
            s = (
                (hi << 80) | (0x4 << 76) | ((lo & 0xFFF) << 64) | (0b10 << 62) | (lo >> 2)
            ).to_bytes(16, "big").hex()
            group.append(f"{s[:8]}-{s[8:12]}-{s[12:16]}-{s[16:20]}-{s[20:]}")
        if len(group) > 1:
            group.sort()
        ids.extend(group)
        stamps.extend([group_ts] * len(group))
        return stamps[start - g0 : stop - g0], ids[start - g0 : stop - g0]

    # --- search ----------------------------------------------------------------------------

    def first_at_or_before(self, ts_ms: int) -> int:
        """The smallest index whose timestamp is <= ts_ms (size when there is none)."""
        lo, hi = 0, self.size
        while lo < hi:
            mid = (lo + hi) // 2
            if self.ts(mid) <= ts_ms:
                hi = mid
            else:
                lo = mid + 1
        return lo

    def index_after(self, ts_ms: int, event_id: str) -> int:
        """The first index that comes after position (ts_ms, event_id) in stream order."""
        i = self.first_at_or_before(ts_ms)
        if i < self.size and self.ts(i) == ts_ms:
            _, ids = self.span(i, self._group_end(i))
            i += sum(1 for other in ids if other <= event_id)
        return i

    def index_of(self, event_id: str) -> int | None:
        """The index of an id this timeline generated, or None."""
        if len(event_id) != 36 or event_id[8] != "-" or event_id[13] != "-":
            return None
        try:
            hi = int(event_id[:8] + event_id[9:13], 16)
        except ValueError:
            return None
        j = self._perm.inverse(hi & M48)
        if j >= self.size:
            return None
        g0, g1 = self._anchor(j), self._group_end(j)
        _, ids = self.span(g0, g1)
        try:
            return g0 + ids.index(event_id)
        except ValueError:
            return None
