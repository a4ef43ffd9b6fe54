-- The API caches final history pages and asks the checkpoints whether any of them changed: a
-- pending checkpoint (1s klines written, not rolled up yet) or one rolled up after the page was
-- read, over the page's range, means the page must be read again. Both are plain reads, so a
-- read replica serves them too. The index answers "rolled up after" and "newest roll-up" per
-- symbol without a scan.

CREATE INDEX ingest_checkpoint_aggregated ON ingest_checkpoint (symbol, aggregated_at);

GRANT SELECT (symbol, first_open_time, last_open_time, aggregated_at) ON ingest_checkpoint
    TO cryptochart_api;
