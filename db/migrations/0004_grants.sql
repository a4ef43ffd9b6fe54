-- Who may do what. The analyst and the API read the kline relations and nothing else.

DO $$
DECLARE
    relation text;
BEGIN
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO cryptochart_app, cryptochart_api, '
                   'cryptochart_analyst', current_database());
    GRANT USAGE ON SCHEMA public TO cryptochart_app, cryptochart_api, cryptochart_analyst;
    GRANT SELECT, INSERT, UPDATE ON kline_1s, ingest_checkpoint TO cryptochart_app;
    GRANT SELECT ON kline_interval TO cryptochart_app;
    FOR relation IN SELECT 'kline_1s' UNION ALL SELECT 'kline_' || name FROM kline_interval LOOP
        EXECUTE format('GRANT SELECT ON %I TO cryptochart_api, cryptochart_analyst', relation);
    END LOOP;
END
$$;

COMMENT ON TABLE kline_1s IS
    'Exchange 1-second klines, one row per symbol and second. Times are the candle''s open and '
    'close; prices and volumes are exact decimals as the exchange sent them.';
