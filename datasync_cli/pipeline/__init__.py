"""The ingest run: readers over disjoint time ranges feed a bounded queue drained by one writer."""

from .run import IngestOutcome, run_ingest

__all__ = ["IngestOutcome", "run_ingest"]
