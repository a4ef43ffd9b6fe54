"""SQL of the inserter: stage a batch with COPY, upsert it into kline_1s, widen checkpoints;
upsert symbols' tick and lot sizes."""

from __future__ import annotations

from cryptochart.core.kline import KLINE_COLUMNS as KLINE_FIELDS

_UPDATES = ", ".join(f"{f} = EXCLUDED.{f}" for f in KLINE_FIELDS[2:])
_COLUMNS = ", ".join(KLINE_FIELDS)

# Times travel as Unix milliseconds and become timestamptz in SQL: exact, no float in between.
# Decimals arrive as the exchange's text; numeric input parses them exactly. ``kind`` names the
# first consistency rule a row breaks, in the order of core.kline.validate (NaN sorts above
# 'Infinity' in numeric, so "> 0 AND < 'Infinity'" is "finite and positive").
CREATE_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS kline_staging (
    seq bigint, symbol text, open_time bigint, close_time bigint,
    open numeric, high numeric, low numeric, close numeric, volume numeric,
    quote_volume numeric, trades bigint, taker_buy_base_volume numeric,
    taker_buy_quote_volume numeric,
    kind text GENERATED ALWAYS AS (CASE
        WHEN NOT (open > 0 AND open < 'Infinity' AND high > 0 AND high < 'Infinity'
                  AND low > 0 AND low < 'Infinity' AND close > 0 AND close < 'Infinity')
            THEN 'bad_price'
        WHEN high < low THEN 'high_below_low'
        WHEN NOT (low <= open AND open <= high AND low <= close AND close <= high)
            THEN 'open_close_outside_range'
        WHEN NOT (volume >= 0 AND volume < 'Infinity'
                  AND quote_volume >= 0 AND quote_volume < 'Infinity'
                  AND taker_buy_base_volume >= 0 AND taker_buy_base_volume < 'Infinity'
                  AND taker_buy_quote_volume >= 0 AND taker_buy_quote_volume < 'Infinity'
                  AND trades >= 0)
            THEN 'negative_volume'
        WHEN close_time < open_time THEN 'close_before_open'
    END) STORED
) ON COMMIT DELETE ROWS
"""

COPY_STAGING = f"COPY kline_staging (seq, {_COLUMNS}) FROM STDIN"

# Each symbol's unclaimed pending checkpoint is widened (a new one opened once the minute job has
# claimed it), in symbol order like the minute job's claim, so neither waits on the other in a
# cycle. The rows breaking a rule are returned, to be set aside with their kind.
_WRITE = f"""
WITH written AS (
    INSERT INTO kline_1s AS k ({_COLUMNS})
    SELECT symbol,
           timestamptz 'epoch' + open_time * interval '1 millisecond',
           timestamptz 'epoch' + close_time * interval '1 millisecond',
           open, high, low, close, volume, quote_volume, trades,
           taker_buy_base_volume, taker_buy_quote_volume
    FROM {{rows}}{{conflict}}
    RETURNING symbol, open_time
),
widened AS (
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
)
SELECT seq, kind, symbol, open_time FROM kline_staging WHERE kind IS NOT NULL ORDER BY seq
"""

# The common case, a batch of seconds not stored yet: a plain INSERT, which costs about two
# thirds of the upsert (no arbiter probe per row, no sort). A batch holding a stored second or
# one second twice fails it with a unique violation, and is then written with UPSERT.
INSERT_NEW = _WRITE.format(rows="kline_staging WHERE kind IS NULL", conflict="")

# One row per (symbol, open_time) of the consistent ones (the latest in the batch wins); a
# redelivered identical kline changes nothing and is not counted, so checkpoints only name the
# seconds that really changed.
UPSERT = _WRITE.format(
    rows="""(
        SELECT DISTINCT ON (symbol, open_time) *
        FROM kline_staging
        WHERE kind IS NULL
        ORDER BY symbol, open_time, seq DESC
    ) AS batch""",
    conflict=f"""
    ON CONFLICT (symbol, open_time) DO UPDATE SET {_UPDATES}
    WHERE (k.*) IS DISTINCT FROM (EXCLUDED.*)""",
)

# A symbol's precision; updated_at moves only when a size really changes.
UPSERT_INSTRUMENT = """
INSERT INTO symbol_info AS s (symbol, tick_size, lot_size) VALUES (%s, %s, %s)
ON CONFLICT (symbol) DO UPDATE SET
    tick_size = EXCLUDED.tick_size, lot_size = EXCLUDED.lot_size, updated_at = now()
WHERE (s.tick_size, s.lot_size) IS DISTINCT FROM (EXCLUDED.tick_size, EXCLUDED.lot_size)
"""
