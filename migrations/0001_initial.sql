-- Initial schema: events, staging for COPY, checkpoints, rejected records, run bookkeeping.

CREATE TABLE IF NOT EXISTS ingested_events (
    id          TEXT PRIMARY KEY,
    event_type  TEXT,
    timestamp   TIMESTAMPTZ,
    data        JSONB NOT NULL,
    ingested_at TIMESTAMPTZ DEFAULT now()
);

CREATE INDEX IF NOT EXISTS ingested_events_timestamp_idx ON ingested_events (timestamp);

-- COPY target. UNLOGGED because its rows live only inside one batch transaction; each writer
-- touches only its own writer_id, so several writer connections never contend.
CREATE UNLOGGED TABLE IF NOT EXISTS staging_events (
    writer_id  INT NOT NULL,
    id         TEXT,
    event_type TEXT,
    ts_us      BIGINT,
    data       TEXT
);

-- One checkpoint per reader: its time range [lo_ms, hi_ms] and the last event stored.
CREATE TABLE IF NOT EXISTS cursor_state (
    reader_id  TEXT PRIMARY KEY,
    hi_ms      BIGINT,
    lo_ms      BIGINT,
    cursor     TEXT,
    endpoint   TEXT,
    last_ts_ms BIGINT,
    last_id    TEXT,
    events     BIGINT NOT NULL DEFAULT 0,
    rejected   BIGINT NOT NULL DEFAULT 0,
    finished   BOOLEAN NOT NULL DEFAULT false,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The unique hash makes storing the same bad record again (a refetch after a crash) a no-op.
CREATE TABLE IF NOT EXISTS rejected_events (
    id          BIGSERIAL PRIMARY KEY,
    raw_sha256  TEXT NOT NULL UNIQUE,
    event_id    TEXT,
    reason      TEXT NOT NULL,
    raw         TEXT NOT NULL,
    rejected_at TIMESTAMPTZ DEFAULT now()
);

CREATE TABLE IF NOT EXISTS ingest_runs (
    run_id       BIGSERIAL PRIMARY KEY,
    started_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at  TIMESTAMPTZ,
    status       TEXT NOT NULL DEFAULT 'running'
                 CHECK (status IN ('running', 'completed', 'interrupted', 'failed')),
    source_total BIGINT,
    inserted     BIGINT NOT NULL DEFAULT 0,
    rejected     BIGINT NOT NULL DEFAULT 0,
    message      TEXT
);
