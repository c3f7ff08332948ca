"""The run's figures and how they read: one snapshot for every output, and the words for it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Snapshot:
    """The figures a run shows while it works; identical for the display and the log lines.

    `stored` is what the database holds of the source (earlier runs included), the bar's
    position; duplicates and events outside a reader's range are counted, never as progress."""

    stored: int = 0
    total: int | None = None
    fetched: int = 0
    inserted: int = 0
    duplicates: int = 0
    conflicts: int = 0
    rejected: int = 0
    outside: int = 0
    events_per_s: float = 0.0
    eta_s: float | None = None
    elapsed_s: float = 0.0
    endpoint: str = "-"
    readers: int = 0
    ranges_left: int = 0
    pages: int = 0
    retries: int = 0
    rate_limited: int = 0
    rate_wait_s: float = 0.0
    token_left_s: float | None = None  # None when unknown (no token, or no lifetime given)
    token_left_is_bound: bool = False  # a supplied token of unknown age: at most this long
    token_origin: str | None = None
    feed_pace: float | None = None  # requests/s the feed is paced at, once a throttle showed
    warnings: list[str] = field(default_factory=list)


def fmt_duration(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "--"
    seconds = max(int(seconds), 0)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:d}:{s:02d}"


def token_text(snap: Snapshot) -> str:
    """The token's time left, said as what is known: exact, at most, or unknown."""
    if snap.token_left_s is None:
        return "token: lifetime unknown" if snap.token_origin else "no token"
    left = fmt_duration(snap.token_left_s)
    if snap.token_left_is_bound:
        return f"token ≤{left} left (age unknown)"
    return f"token {left} left"


def token_warning(snap: Snapshot) -> str | None:
    """Warn when the stream token will run out before the run is expected to end."""
    if snap.token_left_s is None or snap.eta_s is None or snap.endpoint == "standard":
        return None
    if snap.token_left_s < snap.eta_s:
        at_most = "at most " if snap.token_left_is_bound else ""
        return (
            f"the stream token lasts {at_most}{fmt_duration(snap.token_left_s)}, less than the "
            f"ETA ({fmt_duration(snap.eta_s)}); ingest renews it when the API key allows, "
            "else it reads the standard endpoint"
        )
    return None


def progress_of(snap: Snapshot) -> str:
    """"1,234 / 3,000,000 (41%)": stored of the total, never past 100 %."""
    if not snap.total:
        return f"{snap.stored:,} stored"
    shown = min(snap.stored, snap.total)
    text = f"{shown:,}/{snap.total:,} ({100 * shown // snap.total}%)"
    if snap.stored > snap.total:
        text += f", {snap.stored - snap.total:,} beyond the source's total"
    return text


_SEP = " · "


def fit(parts: list[str], width: int | None = None) -> str:
    """The parts joined by " · ", on as many lines of at most `width` columns as they need
    (a part is never cut); one line when `width` is None. A terminal would otherwise break
    a line anywhere, mid-figure."""
    if width is None:
        return _SEP.join(parts)
    lines: list[str] = []
    for part in parts:
        if lines and len(lines[-1]) + len(_SEP) + len(part) <= width:
            lines[-1] += _SEP + part
        else:
            lines.append(part)
    return "\n".join(lines)


def rate_line(snap: Snapshot, width: int | None = None) -> str:
    return fit([
        f"{snap.events_per_s:,.0f} events/s", f"ETA {fmt_duration(snap.eta_s)}",
        f"{snap.endpoint} endpoint", token_text(snap),
    ], width)


def counts_line(snap: Snapshot, width: int | None = None) -> str:
    return fit(
        _count_parts(snap.inserted, snap.duplicates, snap.rejected, snap.conflicts, snap.outside),
        width,
    )


def _count_parts(
    inserted: int, duplicates: int, rejected: int, conflicts: int, outside: int
) -> list[str]:
    """Counts of this run; the rare ones (conflicting versions, reads outside a reader's range)
    only when there are any."""
    parts = [f"inserted {inserted:,}", f"duplicates {duplicates:,}", f"rejected {rejected:,}"]
    if conflicts:
        parts.append(f"conflicts {conflicts:,}")
    if outside:
        parts.append(f"outside ranges {outside:,}")
    return parts


def health_line(snap: Snapshot, width: int | None = None) -> str:
    """Readers, ranges, the source's refusals and retries. "rate waits" is the time no request
    could go for the rate limits, paced waits included: not only the 429s' Retry-After."""
    parts = [
        f"readers {snap.readers}", f"ranges left {snap.ranges_left}",
        f"429s {snap.rate_limited:,}", f"rate waits {fmt_duration(snap.rate_wait_s)}",
        f"retries {snap.retries:,}",
    ]
    if snap.feed_pace:
        parts.append(f"feed paced at {snap.feed_pace:.2f}/s")
    return fit(parts, width)


def summary_lines(summary: dict[str, Any], width: int | None = None) -> list[str]:
    """The end-of-run summary in words; with `width`, long lines break between figures."""
    s = summary
    total = s.get("source_total")
    of_total = f" of {total:,}" if isinstance(total, int) else ""
    head = "complete" if s.get("status") == "complete" else "incomplete"
    counts = _count_parts(s.get("inserted", 0), s.get("duplicates", 0), s.get("rejected", 0),
                          s.get("conflicts", 0), s.get("outside_range", 0))
    lines = [
        f"{head}: {s.get('stored', 0):,}{of_total} stored in "
        f"{fmt_duration(s.get('elapsed_s'))} ({s.get('events_per_s', 0):,.0f} events/s)",
    ]
    lines += fit([f"this run: fetched {s.get('fetched', 0):,}", *counts], width).split("\n")
    pages, seconds = s.get("pages_by_endpoint") or {}, s.get("seconds_by_endpoint") or {}
    used = [
        f"{name} {pages[name]:,} page(s)"
        + (f" in {fmt_duration(seconds[name])}" if name in seconds else "")
        for name in sorted(pages)
        if name != "-"
    ]
    if used:
        lines.append("endpoints: " + ", ".join(used))
    lines += fit([
        f"retries {s.get('retries', 0):,}", f"429s {s.get('rate_limited', 0):,}",
        f"rate waits {fmt_duration(s.get('rate_wait_s'))}",
    ], width).split("\n")
    if s.get("ranges_left"):
        lines.append(f"{s['ranges_left']} range(s) left: rerun `datasync ingest` to continue")
    return lines
