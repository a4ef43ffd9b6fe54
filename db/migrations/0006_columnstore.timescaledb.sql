-- Columnstore (TimescaleDB's compression) for kline_1s and every aggregate: one compressed batch
-- per symbol and up to 1,000 rows in time order, so a symbol's range reads one batch and its
-- prices and times sit next to each other. The policies that compress chunks past an age are set
-- by `cryptochart migrate` from the settings (db/policies.py), so a changed setting re-applies.
-- Late klines still land exactly once: an upsert into a compressed chunk decompresses only the
-- batch that may hold the same (symbol, open_time), then the primary key decides as usual.

ALTER TABLE kline_1s SET (
    timescaledb.enable_columnstore = true,
    timescaledb.segmentby = 'symbol',
    timescaledb.orderby = 'open_time'
);

DO $$
DECLARE
    level record;
BEGIN
    FOR level IN SELECT * FROM kline_interval ORDER BY bucket LOOP
        EXECUTE format(
            $q$ALTER MATERIALIZED VIEW %I SET (
                   timescaledb.enable_columnstore = true,
                   timescaledb.segmentby = 'symbol',
                   timescaledb.orderby = 'open_time')$q$,
            'kline_' || level.name);
    END LOOP;
END
$$;
