"""SQL of the inserter: stage a batch with COPY, upsert it into kline_1s, widen checkpoints;
upsert symbols' tick and lot sizes."""

from __future__ import annotations

from cryptochart.core.kline import KLINE_COLUMNS as KLINE_FIELDS

_UPDATES = ", ".join(f"{f} = EXCLUDED.{f}" for f in KLINE_FIELDS[2:])
_COLUMNS = ", ".join(KLINE_FIELDS)

# Times travel as Unix milliseconds and become timestamptz in SQL: exact, no float in between.
CREATE_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS kline_staging (
    seq bigint, symbol text, open_time bigint, close_time bigint,
    open numeric, high numeric, low numeric, close numeric, volume numeric,
    quote_volume numeric, trades bigint, taker_buy_base_volume numeric,
    taker_buy_quote_volume numeric
) ON COMMIT DELETE ROWS
"""

COPY_STAGING = f"COPY kline_staging (seq, {_COLUMNS}) FROM STDIN (FORMAT BINARY)"

STAGING_TYPES = (
    "int8",
    "text",
    "int8",
    "int8",
    "numeric",
    "numeric",
    "numeric",
    "numeric",
    "numeric",
    "numeric",
    "int8",
    "numeric",
    "numeric",
)

# One row per (symbol, open_time) (the latest in the batch wins); a redelivered identical kline
# changes nothing and is not counted, so checkpoints only name the seconds that really changed.
# Each symbol's unclaimed pending checkpoint is widened (a new one opened once the minute job has
# claimed it), in symbol order like the minute job's claim, so neither waits on the other in a
# cycle.
UPSERT = f"""
WITH batch AS (
    SELECT DISTINCT ON (symbol, open_time) *
    FROM kline_staging
    ORDER BY symbol, open_time, seq DESC
),
written AS (
    INSERT INTO kline_1s AS k ({_COLUMNS})
    SELECT symbol,
           timestamptz 'epoch' + open_time * interval '1 millisecond',
           timestamptz 'epoch' + close_time * interval '1 millisecond',
           open, high, low, close, volume, quote_volume, trades,
           taker_buy_base_volume, taker_buy_quote_volume
    FROM batch
    ON CONFLICT (symbol, open_time) DO UPDATE SET {_UPDATES}
    WHERE (k.*) IS DISTINCT FROM (EXCLUDED.*)
    RETURNING symbol, open_time
)
INSERT INTO ingest_checkpoint AS c (symbol, first_open_time, last_open_time, rows)
SELECT symbol, min(open_time), max(open_time), count(*)
FROM written
GROUP BY symbol
ORDER BY symbol
ON CONFLICT (symbol) WHERE aggregated_at IS NULL AND NOT claimed DO UPDATE SET
    first_open_time = least(c.first_open_time, EXCLUDED.first_open_time),
    last_open_time = greatest(c.last_open_time, EXCLUDED.last_open_time),
    rows = c.rows + EXCLUDED.rows,
    updated_at = now()
"""

# A symbol's precision; updated_at moves only when a size really changes.
UPSERT_INSTRUMENT = """
INSERT INTO symbol_info AS s (symbol, tick_size, lot_size) VALUES (%s, %s, %s)
ON CONFLICT (symbol) DO UPDATE SET
    tick_size = EXCLUDED.tick_size, lot_size = EXCLUDED.lot_size, updated_at = now()
WHERE (s.tick_size, s.lot_size) IS DISTINCT FROM (EXCLUDED.tick_size, EXCLUDED.lot_size)
"""
