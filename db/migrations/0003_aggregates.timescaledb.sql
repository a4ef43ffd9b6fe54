-- kline_1m, kline_5m, kline_15m, kline_1h, kline_1d on TimescaleDB: continuous aggregates, each
-- rolled up from the level below (hierarchical), created WITH NO DATA and without a refresh
-- policy: the minute job refreshes exactly the windows that received data.
-- `seconds` counts the 1s klines behind a candle, so a partial candle can be told apart.

DO $$
DECLARE
    level record;
BEGIN
    FOR level IN SELECT * FROM kline_interval ORDER BY bucket LOOP
        EXECUTE format(
            $q$CREATE MATERIALIZED VIEW %1$I
               WITH (timescaledb.continuous, timescaledb.materialized_only = true) AS
               SELECT symbol,
                      time_bucket(%2$L::interval, open_time) AS open_time,
                      max(close_time)                      AS close_time,
                      first(open, open_time)               AS open,
                      max(high)                            AS high,
                      min(low)                             AS low,
                      last(close, open_time)               AS close,
                      sum(volume)                          AS volume,
                      sum(quote_volume)                    AS quote_volume,
                      sum(trades)::bigint                  AS trades,
                      sum(taker_buy_base_volume)           AS taker_buy_base_volume,
                      sum(taker_buy_quote_volume)          AS taker_buy_quote_volume,
                      %3$s::integer                        AS seconds
               FROM %4$I
               GROUP BY symbol, time_bucket(%2$L::interval, open_time)
               WITH NO DATA$q$,
            'kline_' || level.name, level.bucket,
            CASE WHEN level.source = 'kline_1s' THEN 'count(*)' ELSE 'sum(seconds)' END,
            level.source);
    END LOOP;
END
$$;
