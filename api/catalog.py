"""Which symbols exist: the configured ones, those seen on Kafka, and those with stored candles."""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from decimal import Decimal

import msgspec

from cryptochart.api.candles import text
from cryptochart.api.errors import InvalidParameter
from cryptochart.api.history import to_ms
from cryptochart.api.pool import Pool
from cryptochart.core.database import AsyncConn

SYMBOL_PATTERN = re.compile(r"[A-Z0-9]{1,32}")
UNKNOWN_REMEMBERED = 10_000  # unknown symbols remembered at most (the oldest are forgotten)

# Newest-row probes, as the planner walks the primary key for them (an EXISTS may not).
HAS_DATA_QUERY = """
(SELECT open_time FROM kline_1s WHERE symbol = %(symbol)s ORDER BY open_time DESC LIMIT 1)
UNION ALL
(SELECT open_time FROM kline_1m WHERE symbol = %(symbol)s ORDER BY open_time DESC LIMIT 1)
LIMIT 1
"""

# A loose index scan per relation: one primary-key probe per symbol, never a full scan.
# kline_1m keeps symbols whose 1s klines are past retention.
SYMBOLS_QUERY = """
WITH RECURSIVE
seconds(symbol) AS (
    (SELECT symbol FROM kline_1s ORDER BY symbol LIMIT 1)
    UNION ALL
    SELECT (SELECT k.symbol FROM kline_1s k WHERE k.symbol > s.symbol ORDER BY k.symbol LIMIT 1)
    FROM seconds s WHERE s.symbol IS NOT NULL
),
minutes(symbol) AS (
    (SELECT symbol FROM kline_1m ORDER BY symbol LIMIT 1)
    UNION ALL
    SELECT (SELECT k.symbol FROM kline_1m k WHERE k.symbol > m.symbol ORDER BY k.symbol LIMIT 1)
    FROM minutes m WHERE m.symbol IS NOT NULL
),
symbols(symbol) AS (
    SELECT symbol FROM seconds WHERE symbol IS NOT NULL
    UNION
    SELECT symbol FROM minutes WHERE symbol IS NOT NULL
)
SELECT s.symbol,
       coalesce(last_s.close, last_m.close),
       least(first_s.open_time, first_m.open_time),
       greatest(last_s.open_time, last_m.open_time),
       info.tick_size,
       info.lot_size
FROM symbols s
LEFT JOIN LATERAL (SELECT tick_size, lot_size FROM symbol_info WHERE symbol = s.symbol
                   LIMIT 1) info ON true
LEFT JOIN LATERAL (SELECT open_time, close FROM kline_1s WHERE symbol = s.symbol
                   ORDER BY open_time DESC LIMIT 1) last_s ON true
LEFT JOIN LATERAL (SELECT open_time, close FROM kline_1m WHERE symbol = s.symbol
                   ORDER BY open_time DESC LIMIT 1) last_m ON true
LEFT JOIN LATERAL (SELECT open_time FROM kline_1s WHERE symbol = s.symbol
                   ORDER BY open_time LIMIT 1) first_s ON true
LEFT JOIN LATERAL (SELECT open_time FROM kline_1m WHERE symbol = s.symbol
                   ORDER BY open_time LIMIT 1) first_m ON true
ORDER BY s.symbol
"""


class SymbolInfo(msgspec.Struct, rename="camel"):
    """A symbol with stored candles: its latest price, the span of its history (ms) and its
    precision (tick and lot size, null until its source declared them)."""

    symbol: str
    price: str
    first_time: int
    last_time: int
    tick_size: str | None
    lot_size: str | None


class Catalog:
    """Answers "is this a symbol?" without a query for the symbols already known, nor for those
    the database did not have within the last ``unknown_ttl`` seconds."""

    def __init__(
        self,
        pool: Pool,
        configured: Iterable[str],
        unknown_ttl: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pool = pool
        self._known = set(configured)
        self._unknown_ttl = unknown_ttl
        self._clock = clock
        self._unknown: OrderedDict[str, float] = OrderedDict()  # symbol -> when asked, oldest first

    def saw(self, symbol: str) -> None:
        """A symbol arrived on Kafka."""
        self._known.add(symbol)
        self._unknown.pop(symbol, None)

    async def exists(self, symbol: str) -> bool:
        """Whether ``symbol`` is configured, on Kafka, or in the database."""
        if symbol in self._known:
            return True
        if not SYMBOL_PATTERN.fullmatch(symbol):
            return False
        asked = self._unknown.get(symbol)
        if asked is not None and self._clock() - asked < self._unknown_ttl:
            return False
        async with self._pool.connection() as conn:
            cur = await conn.execute(HAS_DATA_QUERY, {"symbol": symbol})
            row = await cur.fetchone()
        if row is not None:
            self.saw(symbol)
            return True
        self._unknown.pop(symbol, None)
        self._unknown[symbol] = self._clock()
        while len(self._unknown) > UNKNOWN_REMEMBERED:
            self._unknown.popitem(last=False)
        return False


async def symbols_with_data(conn: AsyncConn) -> list[SymbolInfo]:
    cur = await conn.execute(SYMBOLS_QUERY)
    out = []
    for symbol, price, first, last, tick, lot in await cur.fetchall():
        assert isinstance(price, Decimal)
        out.append(
            SymbolInfo(
                symbol, text(price), to_ms(first), to_ms(last), step_text(tick), step_text(lot)
            )
        )
    return out


def step_text(step: Decimal | None) -> str | None:
    """A tick or lot size without trailing zeros: 0.01, 1, 10."""
    return None if step is None else text(step.normalize())


async def checked_symbol(catalog: Catalog, raw: str, parameter: str = "symbol") -> str:
    """``raw`` as a known symbol, or InvalidParameter naming ``parameter``."""
    symbol = raw.strip().upper()
    if not SYMBOL_PATTERN.fullmatch(symbol):
        raise InvalidParameter(parameter, f"{raw!r} is not a symbol (1-32 letters and digits)")
    if not await catalog.exists(symbol):
        raise InvalidParameter(parameter, f"unknown symbol {symbol!r}")
    return symbol
