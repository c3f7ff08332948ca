-- One writer per database (the ingest lock guarantees it), so staging rows need no writer slot.
ALTER TABLE staging_events DROP COLUMN IF EXISTS writer_id;
