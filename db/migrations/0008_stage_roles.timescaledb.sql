-- Least privilege for the stages (TimescaleDB): the inserter (cryptochart_app) writes kline_1s and
-- the checkpoints; the minute job (cryptochart_minute_job) refreshes the aggregates and marks the
-- checkpoints; the API and the analyst read; only `cryptochart migrate` connects as the owner.
--
-- TimescaleDB refreshes a continuous aggregate only for its owner, and never from inside a
-- function or procedure that is SECURITY DEFINER (PostgreSQL runs those atomically: "cannot be
-- executed from a function"). So the aggregates belong to the role cryptochart_aggregates, of
-- which the minute job is a member, and an event trigger refuses every DDL command (DROP, ALTER,
-- GRANT, CREATE ...) in a client session of that role or a member: the ownership the minute job
-- inherits refreshes the aggregates and changes no definition. cryptochart_aggregates has LOGIN
-- only because TimescaleDB runs an aggregate's retention and columnstore jobs as its owner and
-- requires that; it has no password, so no client can authenticate as it.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cryptochart_minute_job') THEN
        CREATE ROLE cryptochart_minute_job LOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cryptochart_aggregates') THEN
        CREATE ROLE cryptochart_aggregates LOGIN;  -- owns the continuous aggregates
    ELSE
        ALTER ROLE cryptochart_aggregates LOGIN;
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

GRANT SELECT ON kline_1s TO cryptochart_aggregates;  -- what kline_1m is computed from
GRANT cryptochart_aggregates TO cryptochart_minute_job;

DO $$
DECLARE
    level record;
BEGIN
    FOR level IN SELECT * FROM kline_interval ORDER BY bucket LOOP
        EXECUTE format('ALTER MATERIALIZED VIEW %I OWNER TO cryptochart_aggregates',
                       'kline_' || level.name);
    END LOOP;
END
$$;

CREATE FUNCTION refuse_aggregate_owner_ddl() RETURNS event_trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $fn$
BEGIN
    -- TimescaleDB's own jobs for the aggregates (background workers) run as their owner. A
    -- client that took another role (SET ROLE) may not see its backend's type: refused too.
    IF pg_has_role(session_user, 'cryptochart_aggregates', 'MEMBER')
       AND NOT (SELECT rolsuper FROM pg_roles WHERE rolname = session_user)
       AND coalesce((SELECT backend_type FROM pg_stat_get_activity(pg_backend_pid())),
                    'client backend') = 'client backend'
    THEN
        RAISE EXCEPTION 'permission denied: % is refused to %', session_user, tg_tag
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'the minute job''s role refreshes the aggregates; `cryptochart migrate` '
                         'changes the schema';
    END IF;
END
$fn$;

-- Creating an event trigger takes a superuser; on a server where `migrate` is not one (a managed
-- service), the minute job's role can still drop or alter the aggregates: say so.
DO $$
BEGIN
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        CREATE EVENT TRIGGER refuse_aggregate_owner_ddl ON ddl_command_start
            EXECUTE FUNCTION refuse_aggregate_owner_ddl();
    ELSE
        RAISE WARNING 'not a superuser: no event trigger refuses DDL to cryptochart_minute_job, '
                      'which owns the continuous aggregates through cryptochart_aggregates';
    END IF;
END
$$;
