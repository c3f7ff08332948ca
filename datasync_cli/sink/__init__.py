"""Everything that talks to PostgreSQL; the only package that imports psycopg2."""

from .checkpoints import CheckpointStore, RunRecord, RunStatus
from .db import check_dsn, connect, create_database_for, describe, drop_database, scrub
from .lock import (
    LEASE_HEARTBEAT_S,
    LEASE_LAPSED,
    LEASE_TTL_S,
    IngestLock,
    LeaseHolder,
    ingest_running,
    lease_holder,
)
from .marker import DatabaseState, database_state, mark_database
from .migrations import applied_versions, available, migrate
from .probe import DatabaseProbe, probe_database
from .stats import (
    IdChecksum,
    StoredCheckpoint,
    StoreStats,
    id_checksum,
    iter_ids,
    newest_plausible_ts_ms,
    store_stats,
)
from .writer import CopyWriter, WriteResult

__all__ = [
    "LEASE_HEARTBEAT_S",
    "LEASE_LAPSED",
    "LEASE_TTL_S",
    "CheckpointStore",
    "CopyWriter",
    "DatabaseProbe",
    "DatabaseState",
    "IdChecksum",
    "IngestLock",
    "LeaseHolder",
    "RunRecord",
    "RunStatus",
    "StoreStats",
    "StoredCheckpoint",
    "WriteResult",
    "applied_versions",
    "available",
    "check_dsn",
    "connect",
    "create_database_for",
    "database_state",
    "describe",
    "drop_database",
    "id_checksum",
    "ingest_running",
    "iter_ids",
    "lease_holder",
    "mark_database",
    "migrate",
    "newest_plausible_ts_ms",
    "probe_database",
    "scrub",
    "store_stats",
]
