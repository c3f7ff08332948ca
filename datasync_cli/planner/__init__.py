"""Splitting the stream's time span into ranges for parallel readers, and re-splitting as
readers finish: `RangePlanner` hands out ranges; `rangeplan` decides which to split, `pieces`
where to cut it."""

from .rangeplan import Split
from .ranges import RangePlanner

__all__ = ["RangePlanner", "Split"]
