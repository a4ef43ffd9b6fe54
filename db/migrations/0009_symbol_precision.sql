-- Each symbol's precision, and candle statistics for analysts: the same in both flavours.

-- The tick size (price step) and lot size (quantity step) its source declared: Binance's
-- exchangeInfo filters, the simulated feed's grids, a replay's digits. The producer publishes them
-- to the compacted instruments topic and the inserter upserts them here; updated_at is when they
-- last changed.
CREATE TABLE symbol_info (
    symbol      text PRIMARY KEY,
    tick_size   numeric NOT NULL CHECK (tick_size > 0),
    lot_size    numeric NOT NULL CHECK (lot_size > 0),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
GRANT SELECT, INSERT, UPDATE ON symbol_info TO cryptochart_app;
GRANT SELECT ON symbol_info TO cryptochart_api, cryptochart_analyst;
COMMENT ON TABLE symbol_info IS
    'Each symbol''s tick size (price step) and lot size (quantity step), as its source declared '
    'them; updated_at is when they last changed.';

-- Volume-weighted average price of a candle: quote_volume / volume rounded half up at the 18th
-- decimal, trailing zeros dropped; NULL without volume. div() truncates exactly, so adding half
-- the divisor first rounds without the scale PostgreSQL's own division would pick.
CREATE FUNCTION kline_vwap(quote_volume numeric, volume numeric) RETURNS numeric
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN CASE WHEN volume > 0
                THEN trim_scale(div(quote_volume * 2e18 + volume, volume * 2) * 1e-18)
           END;

-- kline_1s_stats, kline_1m_stats … kline_1d_stats: every column of the relation, then vwap and
-- taker_sell_volume (volume - taker_buy_base_volume). Read with the reader's own privileges.
DO $$
DECLARE
    relation text;
BEGIN
    FOR relation IN SELECT 'kline_1s' UNION ALL SELECT 'kline_' || name FROM kline_interval LOOP
        EXECUTE format(
            $q$CREATE VIEW %1$I WITH (security_invoker = true) AS
               SELECT k.*,
                      kline_vwap(k.quote_volume, k.volume)   AS vwap,
                      k.volume - k.taker_buy_base_volume     AS taker_sell_volume
               FROM %2$I k$q$,
            relation || '_stats', relation);
        EXECUTE format('GRANT SELECT ON %I TO cryptochart_api, cryptochart_analyst',
                       relation || '_stats');
        EXECUTE format(
            'COMMENT ON VIEW %I IS %L', relation || '_stats',
            relation || ' with vwap (quote_volume / volume, half up at 18 decimals, NULL without '
            'volume) and taker_sell_volume (volume - taker_buy_base_volume)');
    END LOOP;
END
$$;
