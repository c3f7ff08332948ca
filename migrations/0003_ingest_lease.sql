-- The ingest lease: at most one row, naming the one ingest allowed to write to this database.
-- It is taken, renewed and released in short ordinary transactions, so it holds through a
-- transaction-pooling proxy (PgBouncer), where a session-level advisory lock does not. Every
-- time is the server's (now()); the clocks of the machines running datasync play no part.
CREATE TABLE IF NOT EXISTS ingest_lease (
    lease         TEXT PRIMARY KEY DEFAULT 'ingest' CHECK (lease = 'ingest'),
    -- Random per taking: every write of the run checks it in its own transaction (fencing).
    holder_id     TEXT NOT NULL,
    host          TEXT NOT NULL,
    pid           INTEGER NOT NULL,
    -- "<boot id> <pid namespace> <start time in clock ticks>", '' where /proc is missing:
    -- lets a run on the same host tell that the holder's process is gone.
    process_start TEXT NOT NULL,
    version       TEXT NOT NULL,
    taken_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    heartbeat_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at    TIMESTAMPTZ NOT NULL
);
