"""The 24 h ticker of each followed symbol: its latest close from the feed, and the open of its
rolling day (for the change in percent) read from the database at most once a minute."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal

import psycopg
from psycopg_pool import PoolTimeout

from cryptochart.api.background import Background
from cryptochart.api.candles import Candle, text
from cryptochart.api.frames import TickerFrame
from cryptochart.api.tickers import change_percent

log = logging.getLogger(__name__)

DAY_REFRESH_SECONDS = 60.0
DayReader = Callable[[str], Awaitable[Candle | None]]


class DayTickers:
    def __init__(
        self,
        read_day: DayReader,
        background: Background,
        clock: Callable[[], float] = time.monotonic,
        refresh_seconds: float = DAY_REFRESH_SECONDS,
    ) -> None:
        self._read_day = read_day
        self._background = background
        self._clock = clock
        self._refresh_seconds = refresh_seconds
        self._open: dict[str, Decimal] = {}
        self._close: dict[str, Decimal] = {}
        self._latest: dict[str, tuple[Decimal, int]] = {}  # symbol → last close, its event time
        self._read_at: dict[str, float] = {}
        self._reading: dict[str, asyncio.Task[None]] = {}

    def saw(self, symbol: str, close: Decimal, event_time: int) -> None:
        self._latest[symbol] = (close, event_time)

    def latest(self, symbol: str) -> tuple[Decimal, int] | None:
        """The newest close with its event time: from the feed, else the day's stored close."""
        return self._latest.get(symbol)

    async def snapshot(self, symbol: str, now: int) -> TickerFrame | None:
        """The frame a new follower starts from (its day read first, once)."""
        if symbol not in self._open:
            await asyncio.shield(self.read(symbol))
        close, event_time = self._latest.get(symbol, (self._close.get(symbol), now))
        if close is None:
            return None
        return self.frame(symbol, close, event_time, now)

    def frame(self, symbol: str, last: Decimal, event_time: int, sent: int) -> TickerFrame:
        day_open = self._open.get(symbol)
        percent = None if day_open is None else change_percent(day_open, last)
        return TickerFrame(symbol, text(last), event_time, sent, percent)

    def refresh_if_stale(self, symbol: str) -> None:
        if self._clock() - self._read_at.get(symbol, float("-inf")) > self._refresh_seconds:
            self.read(symbol)

    def read(self, symbol: str) -> asyncio.Task[None]:
        """Read the symbol's day from the database; one read at a time per symbol."""
        task = self._reading.get(symbol)
        if task is None:
            task = self._reading[symbol] = self._background.spawn(self._read(symbol))
        return task

    async def _read(self, symbol: str) -> None:
        try:
            day = await self._read_day(symbol)
            if day is not None:
                self._open[symbol], self._close[symbol] = day.open, day.close
        except (psycopg.Error, PoolTimeout) as exc:
            log.warning("24h ticker of %s: %s", symbol, exc)
        finally:
            self._read_at[symbol] = self._clock()
            self._reading.pop(symbol, None)
