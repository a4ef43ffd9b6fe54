"""24-hour tickers: a rolling day of candles, at one-minute resolution, summed into one."""

from __future__ import annotations

import decimal
from decimal import Decimal

import msgspec

from cryptochart.api.candles import EXACT, Candle, combine, text
from cryptochart.api.history import END_OF_TIME, complete, newest_open_time
from cryptochart.api.intervals import INTERVALS, ceil_to, floor_to
from cryptochart.core.database import AsyncConn

DAY_MS = 86_400_000
_MINUTE, _HOUR = INTERVALS["1m"], INTERVALS["1h"]
_PERCENT = decimal.Context(prec=28, rounding=decimal.ROUND_HALF_EVEN)


class Ticker(msgspec.Struct, rename="camel"):
    """Binance's 24hr ticker, reduced to what a chart's sidebar shows."""

    symbol: str
    last_price: str
    price_change: str
    price_change_percent: str
    high_price: str
    low_price: str
    volume: str
    open_time: int
    close_time: int


def change_percent(open_: Decimal, last: Decimal) -> str:
    """``last`` against ``open_`` in percent, three decimals like Binance."""
    if not open_:
        return "0.000"
    change = EXACT.subtract(last, open_)
    ratio = _PERCENT.divide(_PERCENT.multiply(change, Decimal(100)), open_)
    return text(ratio.quantize(Decimal("0.001"), context=_PERCENT))


async def last_day(conn: AsyncConn, symbol: str) -> Candle | None:
    """The symbol's last 24 hours up to its newest kline as one candle opening where the window
    does: whole hours from the 1h level, the ragged minutes at both ends from the 1m level
    (each complete to the second)."""
    newest = await newest_open_time(conn, INTERVALS["1s"], symbol)
    if newest is None:
        newest = await newest_open_time(conn, _MINUTE, symbol)
        if newest is None:
            return None
        newest += _MINUTE.ms - 1_000
    start = ceil_to(newest + 1_000 - DAY_MS, _MINUTE)
    first_hour, last_hour = ceil_to(start, _HOUR), floor_to(newest, _HOUR)
    if first_hour < last_hour:
        pieces = await complete(conn, _MINUTE, symbol, start, first_hour)
        pieces += await complete(conn, _HOUR, symbol, first_hour, last_hour)
        pieces += await complete(conn, _MINUTE, symbol, last_hour, END_OF_TIME)
    else:
        pieces = await complete(conn, _MINUTE, symbol, start, END_OF_TIME)
    day = combine(pieces)
    return None if day is None else msgspec.structs.replace(day, open_time=start)


def ticker(symbol: str, day: Candle) -> Ticker:
    return Ticker(
        symbol=symbol,
        last_price=text(day.close),
        price_change=text(EXACT.subtract(day.close, day.open)),
        price_change_percent=change_percent(day.open, day.close),
        high_price=text(day.high),
        low_price=text(day.low),
        volume=text(day.volume),
        open_time=day.open_time,
        close_time=day.close_time,
    )
