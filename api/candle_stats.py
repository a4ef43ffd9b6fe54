"""Candle statistics analysts otherwise compute by hand: VWAP and taker sell volume.

Both follow the analyst views' SQL (``kline_vwap()`` and the ``kline_*_stats`` views) digit for
digit: VWAP is quote_volume / volume rounded half up at the 18th decimal with trailing zeros
dropped (None without volume), computed on integers so no context precision can round it first;
taker sell volume is the exact difference volume - taker_buy_base_volume.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from cryptochart.api.candles import EXACT, Candle, text

VWAP_DECIMALS = 18

# With withStats=true: VWAP (null without volume) and taker sell volume, appended to a row.
CandleStats = tuple[str | None, str]


def vwap(quote_volume: Decimal, volume: Decimal) -> Decimal | None:
    """quote_volume / volume, rounded half up at :data:`VWAP_DECIMALS` places, trailing zeros
    dropped; None when volume is zero."""
    if volume <= 0:
        return None
    scale = Decimal(10) ** VWAP_DECIMALS
    numerator = EXACT.add(EXACT.multiply(EXACT.multiply(quote_volume, scale), 2), volume)
    rounded = EXACT.divide_int(numerator, EXACT.multiply(volume, 2))
    return _trimmed(rounded.scaleb(-VWAP_DECIMALS, EXACT))


def taker_sell_volume(volume: Decimal, taker_buy_base_volume: Decimal) -> Decimal:
    """The base volume of trades where the seller was the taker."""
    return EXACT.subtract(volume, taker_buy_base_volume)


def stats(candle: Candle) -> CandleStats:
    """The two statistics of ``candle`` as exact strings."""
    average = vwap(candle.quote_volume, candle.volume)
    return (
        None if average is None else text(average),
        text(taker_sell_volume(candle.volume, candle.taker_buy_base_volume)),
    )


def row_stats(row: tuple[Any, ...]) -> CandleStats:
    """The two statistics of a wire row (its decimals read back exactly from their digits)."""
    volume = Decimal(row[5])
    average = vwap(Decimal(row[7]), volume)
    return (
        None if average is None else text(average),
        text(taker_sell_volume(volume, Decimal(row[9]))),
    )


def _trimmed(value: Decimal) -> Decimal:
    """``value`` without trailing zeros after the point (PostgreSQL's ``trim_scale``)."""
    if value == value.to_integral_value():
        return value.quantize(Decimal(1), context=EXACT)
    return value.normalize(EXACT)
