"""Starting a followed kline channel from the database's current candle, so its first frames
are whole; read again a few times while the database lags behind Kafka."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import psycopg
from psycopg_pool import PoolTimeout

from cryptochart.api.background import Background
from cryptochart.api.candles import Candle
from cryptochart.api.frames import kline_channel
from cryptochart.api.intervals import Interval
from cryptochart.api.live import LiveCandles

log = logging.getLogger(__name__)

RESEED_SECONDS = 2.0
RESEED_ATTEMPTS = 5
# symbol, interval, the newest second memory knows (None: ask the database) → current candle
CurrentReader = Callable[[str, Interval, int | None], Awaitable[Candle | None]]


class Seeder:
    def __init__(
        self,
        live: LiveCandles,
        read_current: CurrentReader,
        background: Background,
        followed: Callable[[str], bool],
        reseed_seconds: float = RESEED_SECONDS,
    ) -> None:
        self._live = live
        self._read_current = read_current
        self._background = background
        self._followed = followed
        self._reseed_seconds = reseed_seconds
        self._seeding: dict[str, asyncio.Task[None]] = {}

    async def seeded(self, symbol: str, interval: Interval, first: bool) -> None:
        """Wait until the channel's current candle is known: the first follower starts the read,
        later ones wait for the same read while it runs."""
        name = kline_channel(symbol, interval.name)
        task = self._seeding.get(name)
        if task is None and first:
            task = self._seeding[name] = self._background.spawn(self._seed(symbol, interval, 0))
        if task is not None:
            await asyncio.shield(task)

    async def _seed(self, symbol: str, interval: Interval, attempt: int) -> None:
        name = kline_channel(symbol, interval.name)
        candle: Candle | None = None
        failed = False
        try:
            candle = await self._read_current(symbol, interval, self._live.newest_second(symbol))
        except (psycopg.Error, PoolTimeout) as exc:
            log.warning("seeding %s: %s", name, exc)
            failed = True
        finally:
            if attempt == 0:
                self._seeding.pop(name, None)
        if not self._followed(name):
            return
        missing = self._live.seed(symbol, interval, candle) or failed
        if missing and attempt < RESEED_ATTEMPTS:
            # The database lags further behind Kafka than memory reaches: read it again soon.
            self._background.spawn(self._reseed(symbol, interval, attempt + 1))

    async def _reseed(self, symbol: str, interval: Interval, attempt: int) -> None:
        await asyncio.sleep(self._reseed_seconds)
        await self._seed(symbol, interval, attempt)
