-- kline_1m, kline_5m, kline_15m, kline_1h, kline_1d on plain PostgreSQL: tables with the columns
-- and types of the TimescaleDB continuous aggregates, filled by kline_rollup() over the windows
-- the minute job passes (the same windows it refreshes on TimescaleDB).

DO $$
DECLARE
    level record;
BEGIN
    FOR level IN SELECT * FROM kline_interval ORDER BY bucket LOOP
        EXECUTE format(
            'CREATE TABLE %1$I (LIKE kline_1s INCLUDING DEFAULTS, seconds integer NOT NULL,
                                PRIMARY KEY (symbol, open_time))',
            'kline_' || level.name);
    END LOOP;
END
$$;

-- Upsert the candles of one level over bucket-aligned, non-overlapping windows per symbol,
-- from the level below: open = first open, close = last close, high = max, low = min, sums.
CREATE FUNCTION kline_rollup(
    p_interval text, p_symbols text[], p_from timestamptz[], p_to timestamptz[]
) RETURNS bigint LANGUAGE plpgsql AS $fn$
DECLARE
    level kline_interval;
    written bigint;
BEGIN
    SELECT * INTO STRICT level FROM kline_interval WHERE name = p_interval;
    EXECUTE format(
        $q$INSERT INTO %1$I AS t
           SELECT s.symbol,
                  date_bin(%2$L::interval, s.open_time, 'epoch') AS bucket,
                  max(s.close_time),
                  (array_agg(s.open ORDER BY s.open_time))[1],
                  max(s.high),
                  min(s.low),
                  (array_agg(s.close ORDER BY s.open_time DESC))[1],
                  sum(s.volume),
                  sum(s.quote_volume),
                  sum(s.trades)::bigint,
                  sum(s.taker_buy_base_volume),
                  sum(s.taker_buy_quote_volume),
                  %3$s::integer
           FROM unnest($1, $2, $3) AS w(symbol, t0, t1)
           JOIN %4$I s ON s.symbol = w.symbol AND s.open_time >= w.t0 AND s.open_time < w.t1
           GROUP BY s.symbol, bucket
           ON CONFLICT (symbol, open_time) DO UPDATE SET
               close_time = EXCLUDED.close_time, open = EXCLUDED.open, high = EXCLUDED.high,
               low = EXCLUDED.low, close = EXCLUDED.close, volume = EXCLUDED.volume,
               quote_volume = EXCLUDED.quote_volume, trades = EXCLUDED.trades,
               taker_buy_base_volume = EXCLUDED.taker_buy_base_volume,
               taker_buy_quote_volume = EXCLUDED.taker_buy_quote_volume,
               seconds = EXCLUDED.seconds
           WHERE (t.*) IS DISTINCT FROM (EXCLUDED.*)$q$,
        'kline_' || level.name, level.bucket,
        CASE WHEN level.source = 'kline_1s' THEN 'count(*)' ELSE 'sum(s.seconds)' END,
        level.source)
    USING p_symbols, p_from, p_to;
    GET DIAGNOSTICS written = ROW_COUNT;
    RETURN written;
END
$fn$;
