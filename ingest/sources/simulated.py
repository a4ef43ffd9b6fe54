"""A simulated market: a seeded random walk per symbol, shaped like Binance's 1s klines.

Used when Binance is unreachable and for benchmarks. Prices move on each symbol's tick grid (2 to 8
decimals), volumes on its lot grid; every kline opens at the previous close and is internally
consistent (low <= open, close <= high; taker volumes within the totals; quote volume within
volume x [low, high]). The same seed gives the same klines, second after second.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import AsyncIterator, Sequence
from decimal import ROUND_DOWN, Decimal

from cryptochart.core.instrument import Instrument, step_of
from cryptochart.core.kline import Kline
from cryptochart.ingest.sources.base import Rejected

log = logging.getLogger(__name__)

_SCALE = Decimal("1e-8")  # Binance prints prices and volumes with 8 decimals
_EMIT_DELAY = 0.05  # seconds after a second closes before its klines go out, as on the exchange
_YIELD_EVERY = 2_000  # klines between event-loop yields when running flat out
# Rough price levels, so the best-known symbols look familiar; others get a seeded level.
_REFERENCE_PRICES = {
    "BTCUSDT": 60_000.0,
    "ETHUSDT": 3_000.0,
    "BNBUSDT": 550.0,
    "SOLUSDT": 140.0,
    "XRPUSDT": 0.55,
    "DOGEUSDT": 0.12,
    "ADAUSDT": 0.45,
    "TRXUSDT": 0.12,
    "AVAXUSDT": 30.0,
    "LINKUSDT": 14.0,
    "DOTUSDT": 6.5,
    "LTCUSDT": 80.0,
}


class _Walk:
    """One symbol's market: its grids, its character and the last close, in integer ticks."""

    def __init__(self, seed: int, symbol: str) -> None:
        self.symbol = symbol
        self.rng = random.Random(f"{seed}:{symbol}")
        level = _REFERENCE_PRICES.get(symbol) or math.pow(10, self.rng.uniform(-3, 4))
        magnitude = math.floor(math.log10(level))
        self.price_decimals = min(8, max(2, 5 - magnitude))
        self.lot_decimals = min(8, max(0, magnitude + 1))
        self.close = max(1, round(level * 10**self.price_decimals))
        self.sigma = max(1.0, self.close * self.rng.uniform(0.5e-4, 3e-4))  # ticks per second
        self.trades_per_second = self.rng.uniform(1.0, 40.0)
        trade_value = self.rng.uniform(50.0, 2_000.0)  # quote currency per trade
        self.lots_per_trade = max(1.0, trade_value / level * 10**self.lot_decimals)
        self._price_unit = 10 ** (8 - self.price_decimals)
        self._lot_unit = 10 ** (8 - self.lot_decimals)

    def next(self, open_time: int, event_time: int) -> Kline:
        rng = self.rng
        open_ = self.close
        trades = int(rng.expovariate(1.0 / self.trades_per_second))
        if trades == 0:  # a quiet second: no trades, the price stands
            close = high = low = open_
            lots = taker_lots = quote_ticks = taker_quote_ticks = 0
        else:
            close = max(1, open_ + round(rng.gauss(0.0, self.sigma)))
            wick = self.sigma / 2
            high = max(open_, close) + int(abs(rng.gauss(0.0, wick)))
            low = max(1, min(open_, close) - int(abs(rng.gauss(0.0, wick))))
            lots = max(trades, round(trades * self.lots_per_trade * rng.uniform(0.2, 1.8)))
            taker_lots = round(lots * rng.random())
            # Buyer-taker and seller-taker trades at their own average prices, within the range.
            taker_quote_ticks = taker_lots * rng.randint(low, high)
            quote_ticks = taker_quote_ticks + (lots - taker_lots) * rng.randint(low, high)
        self.close = close
        return Kline(
            symbol=self.symbol,
            open_time=open_time,
            close_time=open_time + 999,
            open=self._price(open_),
            high=self._price(high),
            low=self._price(low),
            close=self._price(close),
            volume=self._volume(lots),
            quote_volume=self._quote(quote_ticks),
            trades=trades,
            taker_buy_base_volume=self._volume(taker_lots),
            taker_buy_quote_volume=self._quote(taker_quote_ticks),
            closed=True,
            event_time=event_time,
        )

    def instrument(self) -> Instrument:
        """This market's grids: prices move by ticks, volumes by lots."""
        return Instrument(self.symbol, step_of(self.price_decimals), step_of(self.lot_decimals))

    def _price(self, ticks: int) -> Decimal:
        return Decimal(ticks * self._price_unit).scaleb(-8)

    def _volume(self, lots: int) -> Decimal:
        return Decimal(lots * self._lot_unit).scaleb(-8)

    def _quote(self, lot_ticks: int) -> Decimal:
        exact = Decimal(lot_ticks).scaleb(-(self.price_decimals + self.lot_decimals))
        return exact.quantize(_SCALE, ROUND_DOWN)


class SimulatedSource:
    """Closed 1s klines of ``symbols`` from a random walk seeded by ``seed``.

    ``speed`` is exchange seconds per wall-clock second: 1.0 (the default) is live, each second's
    klines going out just after it closes; ``None`` (or 0) runs flat out with no sleeping, for
    benchmarks. Timestamps start at ``start_ms`` (default: the current second, or ``count``
    seconds before it when running flat out) and stop after ``count`` seconds or at ``until_ms``
    (exclusive), else never. Live with ``catch_up``, a ``start_ms`` in the past is history: the
    seconds up to now go out at once, then the stream goes on live, as one continuous walk.
    """

    name = "sim"

    def __init__(
        self,
        symbols: Sequence[str],
        seed: int = 1,
        *,
        speed: float | None = 1.0,
        start_ms: int | None = None,
        count: int | None = None,
        until_ms: int | None = None,
        catch_up: bool = False,
    ) -> None:
        if not symbols:
            raise ValueError("SimulatedSource needs at least one symbol")
        self.symbols = tuple(dict.fromkeys(s.upper() for s in symbols))
        self.seed = seed
        self.speed = speed if speed else None
        self._start_ms = start_ms
        self._count = count
        self._until_ms = until_ms
        self._catch_up = catch_up

    async def instruments(self) -> list[Instrument]:
        """Each symbol's tick and lot size, from its price level (the grids its klines use)."""
        return [_Walk(self.seed, symbol).instrument() for symbol in self.symbols]

    async def stream(self) -> AsyncIterator[Kline | Rejected]:
        walks = [_Walk(self.seed, symbol) for symbol in self.symbols]
        start, end = self._range()
        # Live, a second goes out when the wall clock closes it; from start_ms, pacing starts now.
        # With catch_up, seconds before now go out at once and the rest as the clock closes them.
        live_clock = self._start_ms is None or (self._catch_up and self.speed == 1.0)
        started = start / 1000 if live_clock else time.time()
        emitted = 0
        for open_time in range(start, end if end is not None else 2**62, 1000):
            if self.speed is not None:
                due = started + (open_time + 1000 - start) / 1000 / self.speed + _EMIT_DELAY
                await asyncio.sleep(max(0.0, due - time.time()))
            for walk in walks:
                # Paced, each kline's event time is when it goes out, as the exchange stamps
                # each event it pushes: a second of many symbols takes a while to emit.
                sent = open_time + 1000 if self.speed is None else time.time_ns() // 1_000_000
                yield walk.next(open_time, sent)
            emitted += len(walks)
            if self.speed is None and emitted >= _YIELD_EVERY:
                emitted = 0
                await asyncio.sleep(0)  # let other tasks run between batches

    def _range(self) -> tuple[int, int | None]:
        now = int(time.time()) * 1000
        if self._start_ms is not None:
            start = self._start_ms // 1000 * 1000
        elif self.speed is None and self._count is not None:
            start = now - self._count * 1000
        else:
            start = now
        if self._count is not None:
            return start, start + self._count * 1000
        return start, self._until_ms
