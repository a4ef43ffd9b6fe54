-- kline_1s: one row per symbol and second, the same columns in both flavours.
-- Plain PostgreSQL: range-partitioned by day on open_time; pg_partman premakes the daily
-- partitions and drops old ones (retention); where the extension is absent (or
-- CRYPTOCHART_USE_PARTMAN=off), db/partitions.py does the same in plain SQL.
-- TimescaleDB: a hypertable in 6-hour chunks. Why 6 hours: at 1,000 symbols a chunk holds
-- 21.6 M rows (about 3 GB with its primary key index), so the chunk being written stays in memory
-- on a modest server, and retention drops whole chunks at a fine enough step. TimescaleDB's guide:
-- recent chunks within 25 % of memory.
-- `cryptochart migrate` names the flavour in the setting cryptochart.flavour.

DO $$
DECLARE
    flavour text := current_setting('cryptochart.flavour');
BEGIN
    IF flavour = 'timescaledb' THEN
        CREATE EXTENSION IF NOT EXISTS timescaledb;
    END IF;
    EXECUTE format($q$
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
        ) %s$q$,
        CASE flavour WHEN 'postgres' THEN 'PARTITION BY RANGE (open_time)' ELSE '' END);
    IF flavour = 'timescaledb' THEN
        PERFORM create_hypertable('kline_1s', 'open_time', chunk_time_interval => INTERVAL '6 hours');
    END IF;
END
$$;

DO $$
DECLARE
    partman_version text;
BEGIN
    IF current_setting('cryptochart.flavour') <> 'postgres' THEN
        RETURN;
    END IF;
    -- How long each kline relation keeps rows (set by `cryptochart migrate` from the settings);
    -- the minute job's upkeep drops older partitions and aggregate rows.
    CREATE TABLE retention_policy (
        relation  text PRIMARY KEY,
        keep      interval NOT NULL
    );
    SELECT default_version INTO partman_version
    FROM pg_available_extensions
    WHERE name = 'pg_partman'
      AND coalesce(current_setting('cryptochart.use_partman', true), 'on') <> 'off';
    IF partman_version IS NULL THEN
        -- Rows outside every premade day land here instead of failing the insert.
        CREATE TABLE kline_1s_default PARTITION OF kline_1s DEFAULT;
        RETURN;
    END IF;
    CREATE SCHEMA IF NOT EXISTS partman;
    CREATE EXTENSION IF NOT EXISTS pg_partman SCHEMA partman;
    IF split_part(partman_version, '.', 1)::int >= 5 THEN
        EXECUTE $q$SELECT partman.create_parent(p_parent_table => 'public.kline_1s',
            p_control => 'open_time', p_interval => '1 day', p_type => 'range',
            p_premake => 4, p_jobmon => false)$q$;
    ELSE
        EXECUTE $q$SELECT partman.create_parent(p_parent_table => 'public.kline_1s',
            p_control => 'open_time', p_interval => '1 day', p_type => 'native',
            p_premake => 4, p_jobmon => false)$q$;
    END IF;
    UPDATE partman.part_config
    SET infinite_time_partitions = true, retention_keep_table = false
    WHERE parent_table = 'public.kline_1s';
END
$$;
