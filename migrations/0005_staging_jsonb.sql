-- Pages are COPYed in PostgreSQL's binary format, where one encoding must suit both targets:
-- staging_events.data becomes jsonb like ingested_events.data (parsed once, during the COPY).
-- Staging is scratch space, truncated after each page, so its old rows do not matter.
TRUNCATE staging_events;
ALTER TABLE staging_events ALTER COLUMN data TYPE JSONB USING data::jsonb;
