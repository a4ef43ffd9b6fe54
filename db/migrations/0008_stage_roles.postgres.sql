-- Least privilege for the stages (plain PostgreSQL): the inserter (cryptochart_app) writes
-- kline_1s and the checkpoints; the minute job (cryptochart_minute_job) rolls up the aggregates,
-- keeps the partitions and marks the checkpoints; the API and the analyst read; only
-- `cryptochart migrate` connects as the owner.
--
-- The minute job writes no table itself: kline_rollup() and kline_upkeep() run as their owner
-- (SECURITY DEFINER, with a fixed search_path), and only the minute job may call them.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cryptochart_minute_job') THEN
        CREATE ROLE cryptochart_minute_job LOGIN;
    END IF;
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO cryptochart_minute_job', current_database());
END
$$;

GRANT USAGE ON SCHEMA public TO cryptochart_minute_job;
GRANT SELECT ON kline_interval, schema_migrations TO cryptochart_minute_job;
GRANT SELECT, DELETE ON ingest_checkpoint TO cryptochart_minute_job;
GRANT UPDATE (aggregated_at, first_open_time) ON ingest_checkpoint TO cryptochart_minute_job;
-- The inserter widens pending checkpoints and never marks one aggregated; it reads no catalogue.
REVOKE UPDATE ON ingest_checkpoint FROM cryptochart_app;
GRANT UPDATE (first_open_time, last_open_time, rows, updated_at) ON ingest_checkpoint
    TO cryptochart_app;
REVOKE SELECT ON kline_interval FROM cryptochart_app;

ALTER FUNCTION kline_rollup(text, text[], timestamptz[], timestamptz[])
    SECURITY DEFINER SET search_path = public, pg_temp;
REVOKE EXECUTE ON FUNCTION kline_rollup(text, text[], timestamptz[], timestamptz[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kline_rollup(text, text[], timestamptz[], timestamptz[])
    TO cryptochart_minute_job;

-- Premake kline_1s's daily partitions (yesterday to 4 days ahead) and drop those past the
-- retention (pg_partman does both where installed), delete aggregate rows past theirs.
CREATE FUNCTION kline_upkeep() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $fn$
DECLARE
    today date := (now() AT TIME ZONE 'UTC')::date;
    day date;
    expired text;
    policy record;
BEGIN
    IF EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_partman') THEN
        EXECUTE $q$SELECT partman.run_maintenance(p_parent_table => 'public.kline_1s')$q$;
    ELSE
        FOR day IN SELECT d::date FROM generate_series(today - 1, today + 4, interval '1 day') d
        LOOP
            EXECUTE format(
                'CREATE TABLE IF NOT EXISTS %I PARTITION OF kline_1s FOR VALUES FROM (%L) TO (%L)',
                'kline_1s_p' || to_char(day, 'YYYYMMDD'),
                day::text || ' 00:00:00+00', (day + 1)::text || ' 00:00:00+00');
        END LOOP;
        FOR expired IN
            SELECT c.relname
            FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = 'public.kline_1s'::regclass
              AND c.relname ~ '^kline_1s_p[0-9]{8}$'
              AND to_date(substr(c.relname, 11), 'YYYYMMDD') + 1
                  < (now() - (SELECT keep FROM retention_policy WHERE relation = 'kline_1s'))::date
        LOOP
            EXECUTE format('DROP TABLE %I', expired);
        END LOOP;
    END IF;
    FOR policy IN SELECT relation, keep FROM retention_policy WHERE relation <> 'kline_1s' LOOP
        EXECUTE format('DELETE FROM %I WHERE open_time < now() - $1', policy.relation)
            USING policy.keep;
    END LOOP;
END
$fn$;
REVOKE EXECUTE ON FUNCTION kline_upkeep() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kline_upkeep() TO cryptochart_minute_job;
