"""The accounting: what is stored (ingested + rejected) against what the source holds."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .errors import ConfigError
from .settings import Settings
from .sink import ingest_running, store_stats
from .source import SourceConfig, fetch_total


@dataclass(frozen=True)
class Verdict:
    """ingested + rejected should equal expected; missing and extra say by how much not."""

    expected: int
    expected_from: str
    ingested: int
    rejected: int
    conflicts: int  # later versions of stored ids with different content, kept aside
    missing: int
    extra: int
    ranges_left: int
    last_run_status: str | None
    ingest_running: bool = False

    @property
    def ok(self) -> bool:
        return self.missing == 0 and self.extra == 0 and not self.ingest_running

    @property
    def stored(self) -> int:
        return self.ingested + self.rejected

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "stored": self.stored, "ok": self.ok}

    def explain(self) -> str:
        if self.ingest_running:
            # Mid-run the store is short by design; "rerun it" would be wrong advice.
            return (
                f"an ingest is running against this database: {self.stored:,} of "
                f"{self.expected:,} source records stored so far ({self.ingested:,} ingested, "
                f"{self.rejected:,} rejected); verify again when it has finished"
            )
        if self.ok:
            return (
                f"all {self.expected:,} source records accounted for: "
                f"{self.ingested:,} ingested, {self.rejected:,} rejected"
            )
        parts = []
        if self.missing:
            parts.append(f"{self.missing:,} missing")
        if self.extra:
            parts.append(f"{self.extra:,} more than the source reports")
        why = ""
        if self.last_run_status is None:
            why = "; no ingest has run against this database yet: run `datasync ingest`"
        elif self.ranges_left:
            why = f"; ingest has not finished ({self.ranges_left} range(s) left): rerun it"
        elif self.missing:
            why = "; the source may have ended early: rerun ingest, then verify again"
        return (
            f"{', '.join(parts)}: expected {self.expected:,} ({self.expected_from}), "
            f"stored {self.ingested:,} ingested + {self.rejected:,} rejected{why}"
        )


def verify(settings: Settings, expected: int | None = None) -> Verdict:
    """Compare the store with N, or with the API's meta.total when N is not given."""
    if expected is not None and expected < 0:
        raise ConfigError(
            f"--expected must be 0 or more, not {expected}",
            "for example --expected 3000000, or leave it out to use the API's meta.total",
        )
    stats = store_stats(settings.database_url)
    running = stats.migrated and ingest_running(settings.database_url)
    source = "--expected"
    if expected is None:
        settings.require_api()
        expected = fetch_total(SourceConfig.from_settings(settings))
        source = "meta.total from the API"
        if expected is None:
            raise ConfigError(
                "the API did not report meta.total", "pass --expected N with the source's count"
            )
    accounted = stats.ingested + stats.rejected
    left = sum(1 for cp in stats.checkpoints if not cp.finished)
    return Verdict(
        expected=expected,
        expected_from=source,
        ingested=stats.ingested,
        rejected=stats.rejected,
        conflicts=stats.conflicts,
        missing=max(expected - accounted, 0),
        extra=max(accounted - expected, 0),
        ranges_left=left,
        last_run_status=stats.last_run_status,
        ingest_running=running,
    )
