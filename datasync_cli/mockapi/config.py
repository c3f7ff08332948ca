"""The simulator's knobs: one frozen value so tests can start a server in-process."""

from __future__ import annotations

from dataclasses import dataclass

MAX_EVENTS = 100_000_000  # keeps synthetic timestamps strictly spaced before ties are added


@dataclass(frozen=True)
class MockConfig:
    """Every number and fault of the live service; defaults are the live behaviour, faults off."""

    host: str = "127.0.0.1"
    port: int = 8080
    events: int = 3_000_000
    seed: int = 42
    api_key: str | None = None
    rate_limit: int = 10
    rate_window: float = 60.0
    cursor_ttl: float = 117.0
    token_ttl: float = 300.0
    no_stream_access: bool = False
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    feed_rate: float = 0.0
    feed_burst: int = 10
    p5xx: float = 0.0
    p_truncate: float = 0.0
    p_drop: float = 0.0
    p_missing_fields: float = 0.0
    bad_records: int = 0
    duplicates: int = 0
    early_end: float = 1.0
    extra_ids: int = 0
    keepalive_timeout: float = 5.0
    log_requests: bool = False

    def __post_init__(self) -> None:
        problems = list(self._problems())
        if problems:
            raise ValueError("; ".join(problems))

    def _problems(self) -> list[str]:
        out: list[str] = []
        if not 0 <= self.events <= MAX_EVENTS:
            out.append(f"events must be between 0 and {MAX_EVENTS}")
        if not 0 <= self.port <= 65535:
            out.append("port must be between 0 and 65535")
        if self.api_key is not None and not self.api_key:
            out.append("api_key must be non-empty when set")
        if self.rate_limit < 1:
            out.append("rate_limit must be at least 1")
        for name in ("rate_window", "cursor_ttl", "token_ttl", "keepalive_timeout"):
            if getattr(self, name) <= 0:
                out.append(f"{name} must be positive")
        for name in ("latency_ms", "latency_jitter_ms", "feed_rate"):
            if getattr(self, name) < 0:
                out.append(f"{name} must not be negative")
        if self.feed_burst < 1:
            out.append("feed_burst must be at least 1")
        for name in ("p5xx", "p_truncate", "p_drop", "p_missing_fields"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                out.append(f"{name} must be a probability between 0 and 1")
        if not 0.0 < self.early_end <= 1.0:
            out.append("early_end must be in (0, 1]")
        if self.bad_records < 0 or self.duplicates < 0 or self.extra_ids < 0:
            out.append("bad_records, duplicates and extra_ids must not be negative")
        if self.bad_records * 2 > self.events // 2:
            out.append("bad_records may alter at most a quarter of the events")
        if self.duplicates > self.events // 4:
            out.append("duplicates may copy at most a quarter of the events")
        if self.extra_ids > self.events:
            out.append("extra_ids cannot exceed events")
        return out
