-- The minute job claims the pending checkpoints it rolls up, so the inserter's later writes
-- never change a checkpoint under it: the inserter widens only the symbol's unclaimed pending
-- row, and opens a new one once that row is claimed. Marking a claimed checkpoint done moves
-- what it holds past the cut into the symbol's unclaimed pending row. (Before, marking failed
-- whenever the inserter had widened the checkpoint since the plan read it, and the job rolled
-- the same minute up again, many times a minute under load.) A checkpoint left claimed by a
-- crash is claimed again, and rolled up again, by the next run.

ALTER TABLE ingest_checkpoint ADD COLUMN claimed boolean NOT NULL DEFAULT false;

-- At most one unclaimed pending row per symbol: the inserter's ON CONFLICT target.
DROP INDEX ingest_checkpoint_pending;
CREATE UNIQUE INDEX ingest_checkpoint_pending ON ingest_checkpoint (symbol)
    WHERE aggregated_at IS NULL AND NOT claimed;
-- Every row not aggregated yet, claimed or not: what the minute job's plan reads.
CREATE INDEX ingest_checkpoint_unaggregated ON ingest_checkpoint (symbol)
    WHERE aggregated_at IS NULL;

-- Claim every checkpoint not aggregated yet that starts before p_cut (again if already
-- claimed), locking them in symbol order as the inserter does, so neither waits on the other
-- in a cycle.
CREATE FUNCTION ingest_checkpoint_claim(p_cut timestamptz) RETURNS SETOF ingest_checkpoint
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $fn$
    UPDATE ingest_checkpoint c SET claimed = true
    FROM (SELECT p.id FROM ingest_checkpoint p
          WHERE p.aggregated_at IS NULL AND p.first_open_time < p_cut
          ORDER BY p.symbol, p.id
          FOR UPDATE) AS locked
    WHERE c.id = locked.id
    RETURNING c.*
$fn$;

-- Mark the claimed checkpoints p_ids done, rolled up before p_cut; the part of each at or after
-- p_cut (0 rows counted: its rows stay counted once, on the row marked done) is merged into
-- its symbol's unclaimed pending row, keeping the newest updated_at.
CREATE FUNCTION ingest_checkpoint_mark(p_cut timestamptz, p_ids bigint[]) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $fn$
    WITH done AS (
        UPDATE ingest_checkpoint c SET aggregated_at = now()
        WHERE c.id = ANY (p_ids) AND c.claimed AND c.aggregated_at IS NULL
        RETURNING c.symbol, c.last_open_time, c.updated_at
    )
    INSERT INTO ingest_checkpoint AS p (symbol, first_open_time, last_open_time, rows, updated_at)
    SELECT symbol, p_cut, max(last_open_time), 0, max(updated_at)
    FROM done
    WHERE last_open_time >= p_cut
    GROUP BY symbol
    ORDER BY symbol
    ON CONFLICT (symbol) WHERE aggregated_at IS NULL AND NOT claimed DO UPDATE SET
        first_open_time = least(p.first_open_time, EXCLUDED.first_open_time),
        last_open_time = greatest(p.last_open_time, EXCLUDED.last_open_time),
        updated_at = greatest(p.updated_at, EXCLUDED.updated_at)
$fn$;

REVOKE EXECUTE ON FUNCTION ingest_checkpoint_claim(timestamptz) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION ingest_checkpoint_mark(timestamptz, bigint[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ingest_checkpoint_claim(timestamptz) TO cryptochart_minute_job;
GRANT EXECUTE ON FUNCTION ingest_checkpoint_mark(timestamptz, bigint[]) TO cryptochart_minute_job;
