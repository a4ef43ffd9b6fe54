"""A deterministic fake market: the 1s kline of any symbol at any second, computed on its own.

Every kline is a pure function of (seed, symbol, open_time), so the fake exchange's WebSocket and
REST answers agree without storing anything, however long it runs. Prices follow a few slow waves
plus per-second noise; each kline opens at the previous one's close and is internally consistent.
"""

from __future__ import annotations

import hashlib
import math
from decimal import ROUND_DOWN, Decimal

import msgspec

from cryptochart.core.kline import Kline

SCALE = Decimal("1e-8")  # Binance prints prices and volumes with 8 decimals
LOT_SIZE = SCALE  # every volume is a whole number of 1e-8 units
_KNOWN_PRICES = {"BTCUSDT": 61_000.0, "ETHUSDT": 3_400.0, "BNBUSDT": 410.0, "SOLUSDT": 125.0}
_WAVES = ((3607.0, 0.01), (601.0, 0.003), (59.0, 0.0008))  # (period s, amplitude of log price)


def _unit(*parts: object) -> float:
    """A uniform number in [0, 1) fixed by ``parts``."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


class _Symbol:
    """The fixed traits of one symbol under one seed: price level, tick size, wave phases."""

    def __init__(self, seed: int, symbol: str) -> None:
        self.seed = seed
        self.symbol = symbol
        level = _KNOWN_PRICES.get(symbol) or math.pow(10, _unit(seed, symbol, "level") * 6 - 2)
        self.decimals = min(8, max(2, 5 - math.floor(math.log10(level))))
        self.level_ticks = level * math.pow(10, self.decimals)
        self.phases = [_unit(seed, symbol, "phase", i) * math.tau for i in range(len(_WAVES))]

    def close_ticks(self, second: int) -> int:
        log_move = sum(
            amplitude * math.sin(math.tau * second / period + phase)
            for (period, amplitude), phase in zip(_WAVES, self.phases, strict=True)
        )
        log_move += 0.0002 * (_unit(self.seed, self.symbol, second) - 0.5)
        return max(1, round(self.level_ticks * math.exp(log_move)))

    def price(self, ticks: int) -> Decimal:
        return Decimal(ticks * 10 ** (8 - self.decimals)).scaleb(-8)


_symbols: dict[tuple[int, str], _Symbol] = {}


def _traits(seed: int, symbol: str) -> _Symbol:
    traits = _symbols.get((seed, symbol))
    if traits is None:
        traits = _symbols[(seed, symbol)] = _Symbol(seed, symbol)
    return traits


def tick_size(seed: int, symbol: str) -> Decimal:
    """The price step of ``symbol``'s klines: every price is a whole number of ticks."""
    return Decimal(1).scaleb(-_traits(seed, symbol).decimals)


def kline_at(seed: int, symbol: str, open_time: int) -> Kline:
    """The closed 1s kline of ``symbol`` opening at ``open_time`` (ms, whole second)."""
    traits = _traits(seed, symbol)
    second = open_time // 1000
    open_ticks = traits.close_ticks(second - 1)
    close_ticks = traits.close_ticks(second)
    spread = 1 + int(_unit(seed, symbol, second, "wick") * 4)
    high_ticks = max(open_ticks, close_ticks) + spread
    low_ticks = max(1, min(open_ticks, close_ticks) - spread)
    low, high = traits.price(low_ticks), traits.price(high_ticks)
    volume = (Decimal(int(_unit(seed, symbol, second, "volume") * 10**9) + 1) * SCALE).quantize(
        SCALE
    )
    average = low + (high - low) * Decimal(str(round(_unit(seed, symbol, second, "vwap"), 4)))
    taker_share = Decimal(str(round(_unit(seed, symbol, second, "taker"), 4)))
    taker_volume = (volume * taker_share).quantize(SCALE, ROUND_DOWN)
    return Kline(
        symbol=symbol,
        open_time=open_time,
        close_time=open_time + 999,
        open=traits.price(open_ticks),
        high=high,
        low=low,
        close=traits.price(close_ticks),
        volume=volume,
        quote_volume=(volume * average).quantize(SCALE, ROUND_DOWN),
        trades=1 + int(_unit(seed, symbol, second, "trades") * 120),
        taker_buy_base_volume=taker_volume,
        taker_buy_quote_volume=(taker_volume * average).quantize(SCALE, ROUND_DOWN),
        closed=True,
        event_time=open_time + 1000,
    )


def in_progress(kline: Kline, event_time: int) -> Kline:
    """``kline`` as it stood halfway through its second: a prefix of its trades."""
    halfway = kline.open + (kline.close - kline.open) / 2
    middle = halfway.quantize(SCALE, ROUND_DOWN)
    return msgspec.structs.replace(
        kline,
        high=max(kline.open, middle),
        low=min(kline.open, middle),
        close=middle,
        volume=(kline.volume / 2).quantize(SCALE, ROUND_DOWN),
        quote_volume=(kline.quote_volume / 2).quantize(SCALE, ROUND_DOWN),
        trades=kline.trades // 2,
        taker_buy_base_volume=(kline.taker_buy_base_volume / 2).quantize(SCALE, ROUND_DOWN),
        taker_buy_quote_volume=(kline.taker_buy_quote_volume / 2).quantize(SCALE, ROUND_DOWN),
        closed=False,
        event_time=event_time,
    )
