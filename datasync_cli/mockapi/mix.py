"""Fast deterministic integer hashing: every synthetic value is a pure function of (seed, index)."""

from __future__ import annotations

M64 = (1 << 64) - 1
M48 = (1 << 48) - 1

_GOLDEN = 0x9E3779B97F4A7C15
_C1 = 0xBF58476D1CE4E5B9
_C2 = 0x94D049BB133111EB


def mix64(x: int) -> int:
    """SplitMix64 finalizer: a well spread 64-bit value from any integer."""
    x = (x + _GOLDEN) & M64
    x = ((x ^ (x >> 30)) * _C1) & M64
    x = ((x ^ (x >> 27)) * _C2) & M64
    return x ^ (x >> 31)


def derive_key(seed: int, tag: str) -> int:
    """A 64-bit key per (seed, purpose), so different fields never share a hash stream."""
    tag_value = int.from_bytes(tag.encode("utf-8")[:8].ljust(8, b"\0"), "big")
    return mix64((seed & M64) ^ mix64(tag_value))


P1 = 0x9E3779B97F4B  # odd multipliers: multiplication by them is a bijection mod 2**48
P2 = 0xC2B2AE3D27D5
P1_INV = pow(P1, -1, 1 << 48)
P2_INV = pow(P2, -1, 1 << 48)


class Perm48:
    """A keyed bijection on 48-bit integers, so an event id can be turned back into its index."""

    __slots__ = ("_k_in", "_k_out")

    def __init__(self, key: int) -> None:
        self._k_in = key & M48
        self._k_out = (key >> 16) & M48

    @property
    def keys(self) -> tuple[int, int]:
        """The input and output keys, for callers that inline `forward` in a hot loop."""
        return self._k_in, self._k_out

    def forward(self, x: int) -> int:
        x = (x + self._k_in) & M48
        x = (x * P1) & M48
        x ^= x >> 24  # self-inverse: the shift is at least half the width
        x = (x * P2) & M48
        x ^= x >> 24
        x = (x * P1) & M48
        return x ^ self._k_out

    def inverse(self, y: int) -> int:
        x = (y ^ self._k_out) & M48
        x = (x * P1_INV) & M48
        x ^= x >> 24
        x = (x * P2_INV) & M48
        x ^= x >> 24
        x = (x * P1_INV) & M48
        return (x - self._k_in) & M48
