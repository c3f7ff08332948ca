-- Later versions of an id whose content differs from the stored one: the first version stays in
-- ingested_events, every differing later version is kept here, once per distinct content.
CREATE TABLE IF NOT EXISTS event_conflicts (
    conflict_id BIGSERIAL PRIMARY KEY,
    id          TEXT NOT NULL,
    timestamp   TIMESTAMPTZ,
    data        JSONB NOT NULL,
    seen_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The feed and the standard endpoint spell the same timestamp differently; the normalized
-- instant stands for it, so one version seen on both endpoints is kept once.
CREATE UNIQUE INDEX IF NOT EXISTS event_conflicts_version_idx
    ON event_conflicts (id, md5((data - 'timestamp')::text), timestamp);

-- The top range's head: the median instant of its first page, where the stream's newest events
-- were when the plan began. An incremental run reads down to it; one outlier cannot move it.
ALTER TABLE cursor_state ADD COLUMN IF NOT EXISTS head_ms BIGINT;

-- staging_events takes the same rows as a COPY straight into ingested_events, so one encoding
-- serves both; it is scratch space (truncated after each page), so its old rows do not matter.
TRUNCATE staging_events;
ALTER TABLE staging_events DROP COLUMN IF EXISTS ts_us;
ALTER TABLE staging_events ADD COLUMN IF NOT EXISTS timestamp TIMESTAMPTZ;
ALTER TABLE staging_events DROP COLUMN IF EXISTS data;
ALTER TABLE staging_events ADD COLUMN data TEXT;
