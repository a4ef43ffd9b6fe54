-- Roles, the interval catalogue and the ingest checkpoints: the same in both flavours.

DO $$
BEGIN
    -- Roles are cluster-wide: another database of the same cluster may have made them already.
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cryptochart_app') THEN
        CREATE ROLE cryptochart_app LOGIN;      -- producer side: writes klines and checkpoints
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cryptochart_api') THEN
        CREATE ROLE cryptochart_api LOGIN;      -- the API: reads klines only
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cryptochart_analyst') THEN
        CREATE ROLE cryptochart_analyst LOGIN;  -- people with psql: SELECT on the documented views
    END IF;
END
$$;

REVOKE CREATE ON SCHEMA public FROM PUBLIC;

-- One row per aggregate level; each level is rolled up from the one named in `source`.
CREATE TABLE kline_interval (
    name     text PRIMARY KEY,
    bucket   interval NOT NULL UNIQUE,
    source   text NOT NULL
);
INSERT INTO kline_interval (name, bucket, source) VALUES
    ('1m',  '1 minute',   'kline_1s'),
    ('5m',  '5 minutes',  'kline_1m'),
    ('15m', '15 minutes', 'kline_5m'),
    ('1h',  '1 hour',     'kline_15m'),
    ('1d',  '1 day',      'kline_1h');

-- What the inserter wrote and the minute job has not aggregated yet. Each inserter batch widens
-- its symbol's one pending row; the minute job aggregates the row's range and marks it done.
CREATE TABLE ingest_checkpoint (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    symbol           text        NOT NULL,
    first_open_time  timestamptz NOT NULL,
    last_open_time   timestamptz NOT NULL,
    rows             bigint      NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    aggregated_at    timestamptz,
    CHECK (first_open_time <= last_open_time)
);
CREATE UNIQUE INDEX ingest_checkpoint_pending ON ingest_checkpoint (symbol)
    WHERE aggregated_at IS NULL;
CREATE INDEX ingest_checkpoint_updated ON ingest_checkpoint (updated_at);
