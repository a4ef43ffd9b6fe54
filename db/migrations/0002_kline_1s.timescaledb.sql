-- kline_1s on TimescaleDB: a hypertable in 6-hour chunks.
-- Why 6 hours: at 1,000 symbols a chunk holds 21.6 M rows (about 3 GB with its primary key
-- index), so the chunk being written stays in memory on a modest server, and retention drops
-- whole chunks at a fine enough step. TimescaleDB's guide: recent chunks within 25 % of memory.

CREATE EXTENSION IF NOT EXISTS timescaledb;

CREATE TABLE kline_1s (
    symbol                  text        NOT NULL,
    open_time               timestamptz NOT NULL,
    close_time              timestamptz NOT NULL,
    open                    numeric     NOT NULL,
    high                    numeric     NOT NULL,
    low                     numeric     NOT NULL,
    close                   numeric     NOT NULL,
    volume                  numeric     NOT NULL,
    quote_volume            numeric     NOT NULL,
    trades                  bigint      NOT NULL,
    taker_buy_base_volume   numeric     NOT NULL,
    taker_buy_quote_volume  numeric     NOT NULL,
    PRIMARY KEY (symbol, open_time)
);

SELECT create_hypertable('kline_1s', 'open_time', chunk_time_interval => INTERVAL '6 hours');
