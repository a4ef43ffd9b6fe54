"""Candles as the API computes them: folding finer candles into coarser ones, and their wire rows.

Sums run in an exact decimal context, so a candle folded here equals the one PostgreSQL's
``numeric`` roll-up stores, digit for digit.
"""

from __future__ import annotations

import decimal
from collections.abc import Iterable
from decimal import Decimal

import msgspec

from cryptochart.api.intervals import Interval, floor_to
from cryptochart.core import kline as kline_values
from cryptochart.core.kline import Kline

EXACT = decimal.Context(prec=decimal.MAX_PREC, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN)
SECOND_MS = 1_000

# [openTime, open, high, low, close, volume, closeTime, quoteVolume, trades, takerBuyBase,
#  takerBuyQuote, ignore]: one row of Binance's /api/v3/klines.
KlineRow = tuple[int, str, str, str, str, str, int, str, int, str, str, str]
# With withSeconds=true: how many 1s klines are behind the candle, appended.
KlineRowWithSeconds = tuple[int, str, str, str, str, str, int, str, int, str, str, str, int]
# The same without the trailing "ignore": the ``k`` of a live kline frame.
LiveRow = tuple[int, str, str, str, str, str, int, str, int, str, str]


class Candle(msgspec.Struct, frozen=True, gc=False):
    """One candle of any interval; times are Unix milliseconds."""

    open_time: int
    close_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quote_volume: Decimal
    trades: int
    taker_buy_base_volume: Decimal
    taker_buy_quote_volume: Decimal
    seconds: int  # how many 1s klines are behind it
    last_second: int  # open time of the newest 1s kline behind it

    @classmethod
    def of_kline(cls, k: Kline) -> Candle:
        return cls(*kline_values.candle(k), 1, k.open_time)  # type: ignore[arg-type,call-arg]

    def then(self, later: Candle, open_time: int) -> Candle:
        """This candle extended by a later one, as the bucket opening at ``open_time``."""
        return Candle(
            open_time,
            max(self.close_time, later.close_time),
            self.open,
            max(self.high, later.high),
            min(self.low, later.low),
            later.close,
            EXACT.add(self.volume, later.volume),
            EXACT.add(self.quote_volume, later.quote_volume),
            self.trades + later.trades,
            EXACT.add(self.taker_buy_base_volume, later.taker_buy_base_volume),
            EXACT.add(self.taker_buy_quote_volume, later.taker_buy_quote_volume),
            self.seconds + later.seconds,
            max(self.last_second, later.last_second),
        )

    def live_row(self) -> LiveRow:
        return (
            self.open_time,
            text(self.open),
            text(self.high),
            text(self.low),
            text(self.close),
            text(self.volume),
            self.close_time,
            text(self.quote_volume),
            self.trades,
            text(self.taker_buy_base_volume),
            text(self.taker_buy_quote_volume),
        )

    def row(self) -> KlineRow:
        return (*self.live_row(), "0")


def text(value: Decimal) -> str:
    """A decimal as plain digits with its scale kept (``str`` would write 1E-7 for 0.00000010)."""
    return format(value, "f")


def rebucket(candle: Candle, interval: Interval) -> Candle:
    """A finer candle as the first piece of its ``interval`` bucket."""
    return msgspec.structs.replace(candle, open_time=floor_to(candle.open_time, interval))


def fold(candles: Iterable[Candle], interval: Interval) -> list[Candle]:
    """Ascending finer candles rolled up into ascending candles of ``interval``."""
    out: list[Candle] = []
    for candle in candles:
        bucket = floor_to(candle.open_time, interval)
        if out and out[-1].open_time == bucket:
            out[-1] = out[-1].then(candle, bucket)
        else:
            out.append(rebucket(candle, interval))
    return out


def combine(candles: list[Candle]) -> Candle | None:
    """Ascending candles as one, opening with the first (a rolling window's summary)."""
    if not candles:
        return None
    total = candles[0]
    for candle in candles[1:]:
        total = total.then(candle, total.open_time)
    return total
