"""TradingView's UDF datafeed over the same candles: resolutions, symbol info and bars.

UDF speaks seconds and parallel arrays: ``{"s":"ok","t":[…],"o":[…],…}``. A bar is the candle
opening at ``t``; ``from`` is inclusive and ``to`` exclusive; ``countback``, when given, wins
over ``from`` (the newest ``countback`` bars opening before ``to``). An empty answer is
``{"s":"no_data"}``, with ``nextTime`` (the newest bar before the range) when older data exists.
Prices are JSON numbers at the symbol's tick size (``pricescale`` = 10^decimals of it) and volumes
at its lot size; without declared sizes they keep the digits they were stored with.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import msgspec

from cryptochart.api import history
from cryptochart.api.errors import InvalidParameter
from cryptochart.api.intervals import INTERVALS, Interval, ceil_to
from cryptochart.core.database import AsyncConn
from cryptochart.core.instrument import Instrument, decimals_of

EXCHANGE = "cryptochart"
# UDF resolution → our interval. "1S" needs has_seconds; "D" is the library's other daily name.
RESOLUTIONS: dict[str, str] = {
    "1S": "1s",
    "1": "1m",
    "5": "5m",
    "15": "15m",
    "60": "1h",
    "1D": "1d",
}
ALIASES = {"S": "1S", "D": "1D"}
SUPPORTED = list(RESOLUTIONS)
MAX_BARS = 10_000  # bars one answer may hold, with or without countback
STORED_DECIMALS = 8  # the digits of an undeclared symbol: prices are stored as the exchange sent


PRECISION_QUERY = "SELECT tick_size, lot_size FROM symbol_info WHERE symbol = %s"


def interval_of(resolution: str) -> Interval:
    """The interval of a UDF resolution, or InvalidParameter naming ``resolution``."""
    name = RESOLUTIONS.get(ALIASES.get(resolution, resolution))
    if name is None:
        raise InvalidParameter("resolution", f"{resolution!r} is not one of {', '.join(SUPPORTED)}")
    return INTERVALS[name]


def config() -> dict[str, Any]:
    """The answer of ``/udf/config``."""
    return {
        "supported_resolutions": SUPPORTED,
        "supports_group_request": False,
        "supports_marks": False,
        "supports_search": True,
        "supports_timescale_marks": False,
        "supports_time": True,
        "exchanges": [{"value": EXCHANGE, "name": EXCHANGE, "desc": "cryptochart's stored klines"}],
        "symbols_types": [{"name": "crypto", "value": "crypto"}],
    }


async def precision(conn: AsyncConn, symbol: str) -> Instrument | None:
    """The symbol's declared tick and lot size, None until its source declared them."""
    cur = await conn.execute(PRECISION_QUERY, (symbol,))
    row = await cur.fetchone()
    return None if row is None else Instrument(symbol, row[0], row[1])


def symbol_info(symbol: str, steps: Instrument | None) -> dict[str, Any]:
    """The answer of ``/udf/symbols``: TradingView's LibrarySymbolInfo."""
    price_decimals = STORED_DECIMALS if steps is None else decimals_of(steps.tick_size)
    pricescale = 10**price_decimals
    minmov = 1 if steps is None else int(steps.tick_size * pricescale)  # e.g. tick 0.05: 5
    return {
        "name": symbol,
        "ticker": symbol,
        "full_name": f"{EXCHANGE}:{symbol}",
        "description": symbol,
        "type": "crypto",
        "session": "24x7",
        "timezone": "Etc/UTC",
        "exchange": EXCHANGE,
        "listed_exchange": EXCHANGE,
        "format": "price",
        "pricescale": pricescale,
        "minmov": minmov,
        "has_intraday": True,
        "has_seconds": True,
        "seconds_multipliers": ["1"],
        "intraday_multipliers": ["1", "5", "15", "60"],
        "has_daily": True,
        "daily_multipliers": ["1"],
        "has_weekly_and_monthly": False,
        "supported_resolutions": SUPPORTED,
        "volume_precision": STORED_DECIMALS if steps is None else decimals_of(steps.lot_size),
        "data_status": "streaming",
    }


def search_result(symbol: str) -> dict[str, str]:
    return {
        "symbol": symbol,
        "full_name": f"{EXCHANGE}:{symbol}",
        "description": symbol,
        "exchange": EXCHANGE,
        "ticker": symbol,
        "type": "crypto",
    }


async def bars(
    conn: AsyncConn,
    interval: Interval,
    symbol: str,
    start: int,
    end: int,
    countback: int | None,
    steps: Instrument | None,
) -> dict[str, Any]:
    """The answer of ``/udf/history`` for bars opening in [start, end) seconds, or the newest
    ``countback`` bars opening before ``end`` (``start`` ignored)."""
    hi_ms = end * 1000
    if countback is not None:
        candles = await history.klines(conn, interval, symbol, None, hi_ms - 1, countback)
    else:
        first = ceil_to(start * 1000, interval)
        wanted = (ceil_to(hi_ms, interval) - first) // interval.ms
        if wanted > MAX_BARS:
            raise InvalidParameter(
                "from",
                f"the range holds {wanted} bars, more than {MAX_BARS}: narrow it or use countback",
            )
        candles = (
            await history.klines(conn, interval, symbol, first, hi_ms - 1, wanted)
            if wanted > 0
            else []
        )
    if candles:
        return _ok(candles, steps)
    if countback is not None:
        return {"s": "no_data"}  # nothing at all before `to`
    older = await history.klines(conn, interval, symbol, None, start * 1000 - 1, 1)
    if older:
        return {"s": "no_data", "nextTime": older[-1][0] // 1000}
    return {"s": "no_data"}


def _ok(candles: list[history.PageRow], steps: Instrument | None) -> dict[str, Any]:
    """Bars from page rows, whose decimals are read back exactly from their digits."""
    price = _at(None if steps is None else steps.tick_size)
    amount = _at(None if steps is None else steps.lot_size)
    return {
        "s": "ok",
        "t": [r[0] // 1000 for r in candles],
        "o": [price(Decimal(r[1])) for r in candles],
        "h": [price(Decimal(r[2])) for r in candles],
        "l": [price(Decimal(r[3])) for r in candles],
        "c": [price(Decimal(r[4])) for r in candles],
        "v": [amount(Decimal(r[5])) for r in candles],
    }


def _at(step: Decimal | None) -> Any:
    """Rounds a value to the decimals of ``step`` (as stored without one)."""
    if step is None:
        return lambda value: value
    exponent = Decimal(1).scaleb(-decimals_of(step))
    return lambda value: value.quantize(exponent, ROUND_HALF_EVEN)


_encoder = msgspec.json.Encoder(decimal_format="number")


def encode(answer: object) -> bytes:
    """JSON with decimals as numbers, written with exactly their digits (never via a float)."""
    return _encoder.encode(answer)
