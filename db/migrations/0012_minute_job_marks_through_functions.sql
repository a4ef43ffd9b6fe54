-- The minute job claims and marks checkpoints only through ingest_checkpoint_claim() and
-- ingest_checkpoint_mark() (0010, SECURITY DEFINER): the column UPDATE it was granted in 0008
-- for marking them itself is no longer used, so it goes.
REVOKE UPDATE (aggregated_at, first_open_time) ON ingest_checkpoint FROM cryptochart_minute_job;
