"""Missing seconds of ``kline_1s``: the one definition that ``cryptochart audit``, the API's
``/api/v1/gaps`` and its missing-seconds gauge share.

The expected seconds of a symbol over a requested range ``[start, end)`` are every whole second

- from the requested start when one is given, else from the symbol's first stored second in the
  range (a symbol with nothing stored then expects nothing, and says so);
- never before the raw retention horizon, ``now - CRYPTOCHART_RETENTION_1S`` (whole second, rounded
  up): older seconds are dropped by design;
- up to the requested end, exclusive, and never past the start of the current ``settled`` unit
  (``second`` or ``minute``): the current second is still open, the current minute still in flight.

Missing ranges come from one ordered scan of the primary key with ``lead()``, never by reading the
rows out; stored seconds are the expected ones less the missing ones (one row per symbol and
second, by the primary key).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import psycopg

Settled = Literal["second", "minute"]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SECOND_MS = 1000


def to_datetime(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


@dataclass(frozen=True, order=True)
class SecondRange:
    """Whole seconds ``[start_ms, end_ms)``."""

    start_ms: int
    end_ms: int

    @property
    def seconds(self) -> int:
        return (self.end_ms - self.start_ms) // SECOND_MS


@dataclass(frozen=True)
class Gaps:
    """One symbol's expected range, what is missing in it and its minutes short of 60 seconds."""

    symbol: str
    expected: SecondRange
    missing: list[SecondRange]
    short_minutes: list[tuple[int, int]]  # (open time ms, seconds) of kline_1m rows below 60
    nothing_stored: bool = False  # no start was given and the symbol has no stored second

    @property
    def missing_seconds(self) -> int:
        return sum(r.seconds for r in self.missing)

    @property
    def stored_seconds(self) -> int:
        return self.expected.seconds - self.missing_seconds

    @property
    def complete(self) -> bool:
        return not self.missing and not self.nothing_stored


def _ms(column: str) -> str:
    return f"(extract(epoch FROM {column}) * 1000)::bigint"


EXPECTED_QUERY = f"""
WITH h AS (
    SELECT date_trunc('second', now() - %(retention)s::interval) + interval '1 second' AS horizon,
           date_trunc(%(settled)s, now()) AS settled
), r AS (
    SELECT h.horizon, least(%(end)s::timestamptz, h.settled) AS hi FROM h
)
SELECT {
    _ms(
        "CASE WHEN %(start)s::timestamptz IS NOT NULL "
        "THEN greatest(%(start)s::timestamptz, r.horizon) "
        "ELSE (SELECT min(open_time) FROM kline_1s "
        "      WHERE symbol = %(symbol)s AND open_time >= r.horizon AND open_time < r.hi) END"
    )
},
       {_ms("r.hi")}
FROM r
"""

# One ordered primary-key scan: each stored second names the gap after it (up to the next stored
# second, or the end), the first one also the gap before it; nothing stored is one whole gap.
MISSING_QUERY = f"""
SELECT {_ms("g.gap_start")}, {_ms("g.gap_end")}
FROM (
    SELECT open_time,
           lead(open_time, 1, %(hi)s::timestamptz) OVER w AS next,
           row_number() OVER w AS n
    FROM kline_1s
    WHERE symbol = %(symbol)s AND open_time >= %(lo)s AND open_time < %(hi)s
    WINDOW w AS (ORDER BY open_time)
) s
CROSS JOIN LATERAL (VALUES
    (CASE WHEN s.n = 1 THEN %(lo)s::timestamptz END, s.open_time),
    (s.open_time + interval '1 second', s.next)
) AS g(gap_start, gap_end)
WHERE g.gap_end > g.gap_start
UNION ALL
SELECT {_ms("%(lo)s::timestamptz")}, {_ms("%(hi)s::timestamptz")}
WHERE %(lo)s::timestamptz < %(hi)s::timestamptz AND NOT EXISTS (
    SELECT 1 FROM kline_1s
    WHERE symbol = %(symbol)s AND open_time >= %(lo)s AND open_time < %(hi)s)
ORDER BY 1
"""

SHORT_MINUTES_QUERY = f"""
SELECT {_ms("open_time")}, seconds FROM kline_1m
WHERE symbol = %(symbol)s AND open_time >= date_trunc('minute', %(lo)s::timestamptz)
  AND open_time < %(hi)s AND seconds < 60
ORDER BY open_time
"""

# The gauge: each symbol's missing seconds in the 60 whole minutes before the current one.
MISSING_LAST_HOUR_QUERY = """
WITH w AS (
    SELECT greatest(date_trunc('minute', now()) - interval '1 hour',
                    date_trunc('second', now() - %(retention)s::interval) + interval '1 second')
               AS lo,
           date_trunc('minute', now()) AS hi
)
SELECT s.symbol,
       extract(epoch FROM w.hi - w.lo)::bigint
       - (SELECT count(*) FROM kline_1s k
          WHERE k.symbol = s.symbol AND k.open_time >= w.lo AND k.open_time < w.hi)
FROM unnest(%(symbols)s::text[]) AS s(symbol), w
ORDER BY s.symbol
"""


def _expected_params(
    symbol: str, start_ms: int | None, end_ms: int, retention: str, settled: Settled
) -> dict[str, Any]:
    return {
        "symbol": symbol,
        "start": None if start_ms is None else to_datetime(start_ms // SECOND_MS * SECOND_MS),
        "end": to_datetime(end_ms // SECOND_MS * SECOND_MS),
        "retention": retention,
        "settled": settled,
    }


def _bounds(symbol: str, row: tuple[Any, ...] | None) -> tuple[SecondRange, dict[str, Any]]:
    """The expected range from EXPECTED_QUERY's row (empty when nothing is expected), and the
    parameters of the range queries."""
    assert row is not None and row[1] is not None
    hi = int(row[1])
    lo = hi if row[0] is None else min(int(row[0]), hi)
    params = {"symbol": symbol, "lo": to_datetime(lo), "hi": to_datetime(hi)}
    return SecondRange(lo, hi), params


def _gaps(
    symbol: str,
    expected: SecondRange,
    missing: list[tuple[Any, ...]],
    short: list[tuple[Any, ...]],
    nothing_stored: bool,
) -> Gaps:
    return Gaps(
        symbol,
        expected,
        [SecondRange(int(a), int(b)) for a, b in missing],
        [(int(t), int(n)) for t, n in short],
        nothing_stored,
    )


def find_gaps(
    conn: psycopg.Connection[tuple[Any, ...]],
    symbol: str,
    start_ms: int | None,
    end_ms: int,
    *,
    retention: str,
    settled: Settled,
) -> Gaps:
    """The missing seconds of ``symbol`` in ``[start_ms, end_ms)`` (see the module's rules)."""
    params = _expected_params(symbol, start_ms, end_ms, retention, settled)
    row = conn.execute(EXPECTED_QUERY, params).fetchone()
    assert row is not None
    expected, range_params = _bounds(symbol, row)
    if expected.seconds == 0:
        return _gaps(symbol, expected, [], [], start_ms is None and row[0] is None)
    missing = conn.execute(MISSING_QUERY, range_params).fetchall()
    short = conn.execute(SHORT_MINUTES_QUERY, range_params).fetchall()
    return _gaps(symbol, expected, missing, short, False)


async def find_gaps_async(
    conn: psycopg.AsyncConnection[tuple[Any, ...]],
    symbol: str,
    start_ms: int | None,
    end_ms: int,
    *,
    retention: str,
    settled: Settled,
) -> Gaps:
    """:func:`find_gaps` on an async connection."""
    params = _expected_params(symbol, start_ms, end_ms, retention, settled)
    row = await (await conn.execute(EXPECTED_QUERY, params)).fetchone()
    assert row is not None
    expected, range_params = _bounds(symbol, row)
    if expected.seconds == 0:
        return _gaps(symbol, expected, [], [], start_ms is None and row[0] is None)
    missing = await (await conn.execute(MISSING_QUERY, range_params)).fetchall()
    short = await (await conn.execute(SHORT_MINUTES_QUERY, range_params)).fetchall()
    return _gaps(symbol, expected, missing, short, False)


async def missing_last_hour(
    conn: psycopg.AsyncConnection[tuple[Any, ...]], symbols: list[str], retention: str
) -> dict[str, int]:
    """Missing seconds per symbol in the 60 whole minutes before the current one."""
    cur = await conn.execute(MISSING_LAST_HOUR_QUERY, {"symbols": symbols, "retention": retention})
    return {str(symbol): int(missing) for symbol, missing in await cur.fetchall()}
