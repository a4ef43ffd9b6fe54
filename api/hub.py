"""What WebSocket clients follow, and each Kafka update encoded once and published to them.

Channels are ``kline:<SYMBOL>:<interval>``, ``ticker:<SYMBOL>`` and ``status``; Litestar's
ChannelsPlugin fans a published frame out to every subscriber of its channel. The hub counts
followers per channel, so it computes and encodes frames only for channels someone follows.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Coroutine
from decimal import Decimal
from typing import Any

import msgspec
import psycopg
from litestar.channels import ChannelsPlugin
from psycopg_pool import PoolTimeout

from cryptochart.api import history
from cryptochart.api.candles import Candle, text
from cryptochart.api.catalog import Catalog
from cryptochart.api.consumer import Delivery
from cryptochart.api.frames import (
    STATUS_CHANNEL,
    Frame,
    KlineFrame,
    StatusFrame,
    TickerFrame,
    encode,
    kline_channel,
    ticker_channel,
)
from cryptochart.api.intervals import INTERVALS, Interval
from cryptochart.api.live import LiveCandles
from cryptochart.api.metrics import FRAMES_PUBLISHED
from cryptochart.api.pool import Pool
from cryptochart.api.tickers import change_percent, last_day

log = logging.getLogger(__name__)

RESEED_SECONDS = 2.0
RESEED_ATTEMPTS = 5
DAY_REFRESH_SECONDS = 60.0
_ONE_SECOND = INTERVALS["1s"]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Hub:
    def __init__(self, channels: ChannelsPlugin, pool: Pool, catalog: Catalog) -> None:
        self._channels = channels
        self._pool = pool
        self._catalog = catalog
        self.live = LiveCandles()
        self.source = "unknown"  # the ``source`` header of the latest message
        self.last_event_time: int | None = None
        self.clients = 0
        self._followers: Counter[str] = Counter()
        self._seeding: dict[str, asyncio.Task[None]] = {}
        self._day_open: dict[str, Decimal] = {}
        self._day_close: dict[str, Decimal] = {}
        self._latest: dict[str, tuple[Decimal, int]] = {}  # symbol → last close, its event time
        self._day_read_at: dict[str, float] = {}
        self._day_reading: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- following -------------------------------------------------------------------------

    def status_frame(self) -> bytes:
        return encode(StatusFrame(self.source))

    def follow_status(self) -> None:
        self._followers[STATUS_CHANNEL] += 1

    def unfollow_status(self) -> None:
        self._unfollow(STATUS_CHANNEL)

    async def follow_kline(self, symbol: str, interval: Interval) -> bytes | None:
        """Count one more follower; return the current candle's frame, if there is one yet."""
        name = kline_channel(symbol, interval.name)
        self._followers[name] += 1
        if interval.finer is None:
            return None
        if self._followers[name] == 1 or name in self._seeding:
            task = self._seeding.get(name)
            if task is None:
                task = self._seeding[name] = self._spawn(self._seed(symbol, interval, 0))
            await asyncio.shield(task)
        candle = self.live.snapshot(symbol, interval)
        if candle is None:
            return None
        _, event_time = self._latest.get(symbol, (None, now_ms()))
        frame = self._kline_frame(symbol, interval, candle, False, event_time)
        return encode(msgspec.structs.replace(frame, snapshot=True))

    def unfollow_kline(self, symbol: str, interval: Interval) -> None:
        if self._unfollow(kline_channel(symbol, interval.name)) and interval.finer is not None:
            self.live.forget(symbol, interval)

    async def follow_ticker(self, symbol: str) -> bytes | None:
        self._followers[ticker_channel(symbol)] += 1
        if symbol not in self._day_open:
            await asyncio.shield(self._read_day(symbol))
        close, event_time = self._latest.get(symbol, (self._day_close.get(symbol), now_ms()))
        if close is None:
            return None
        frame = self._ticker_frame(symbol, close, event_time)
        return encode(msgspec.structs.replace(frame, snapshot=True))

    def unfollow_ticker(self, symbol: str) -> None:
        self._unfollow(ticker_channel(symbol))

    def _unfollow(self, name: str) -> bool:
        """One follower less; True when it was the last."""
        self._followers[name] -= 1
        if self._followers[name] > 0:
            return False
        del self._followers[name]
        return True

    # --- Kafka updates ---------------------------------------------------------------------

    async def follow_feed(self, batches: asyncio.Queue[list[Delivery]]) -> None:
        """Publish the frames of every 1s kline the Kafka feed queues, until cancelled."""
        while True:
            for delivery in await batches.get():
                try:
                    self.receive(delivery)
                except Exception:  # one bad update must not stop the live feed
                    log.exception("fan-out of %s failed", delivery.kline.symbol)
                # Let this update reach the sockets before the next: a burst (Kafka catching
                # up) then streams through instead of overflowing every client's backlog.
                await asyncio.sleep(0)

    def receive(self, delivery: Delivery) -> None:
        """Publish the frames of one 1s kline."""
        kline, source, timestamp = delivery
        sent = now_ms()
        symbol = kline.symbol
        self._catalog.saw(symbol)
        if source and source != self.source:
            self.source = source
            self._publish(STATUS_CHANNEL, StatusFrame(source))
        event_time = kline.event_time or timestamp
        self.last_event_time = event_time
        self._latest[symbol] = (kline.close, event_time)
        updates = self.live.apply(kline)
        name = kline_channel(symbol, "1s")
        if name in self._followers:
            frame = self._kline_frame(
                symbol, _ONE_SECOND, Candle.of_kline(kline), kline.closed, event_time, sent
            )
            self._publish(name, frame)
        for update in updates:
            name = kline_channel(symbol, update.interval.name)
            if name in self._followers:
                frame = self._kline_frame(
                    symbol, update.interval, update.candle, update.closed, event_time, sent
                )
                self._publish(name, frame)
        name = ticker_channel(symbol)
        if name in self._followers:
            self._publish(name, self._ticker_frame(symbol, kline.close, event_time, sent))
            if time.monotonic() - self._day_read_at.get(symbol, 0.0) > DAY_REFRESH_SECONDS:
                self._read_day(symbol)

    def _publish(self, channel: str, frame: Frame) -> None:
        try:
            self._channels.publish(encode(frame), channel)
        except RuntimeError:  # the plugin has shut down before the feed
            return
        FRAMES_PUBLISHED.labels(type=type(frame).__struct_config__.tag).inc()

    def _kline_frame(
        self,
        symbol: str,
        interval: Interval,
        candle: Candle,
        closed: bool,
        event_time: int,
        sent: int | None = None,
    ) -> KlineFrame:
        return KlineFrame(
            symbol, interval.name, candle.live_row(), closed, event_time, sent or now_ms()
        )

    def _ticker_frame(
        self, symbol: str, last: Decimal, event_time: int, sent: int | None = None
    ) -> TickerFrame:
        day_open = self._day_open.get(symbol)
        percent = None if day_open is None else change_percent(day_open, last)
        return TickerFrame(symbol, text(last), event_time, sent or now_ms(), percent)

    # --- database reads --------------------------------------------------------------------

    async def _seed(self, symbol: str, interval: Interval, attempt: int) -> None:
        """Start following ``interval`` of ``symbol`` from the database's current candle."""
        name = kline_channel(symbol, interval.name)
        candle: Candle | None = None
        failed = False
        try:
            async with self._pool.connection() as conn:
                at = self.live.newest_second(symbol) or await history.newest_second(conn, symbol)
                if at is not None:
                    candle = await history.current(conn, interval, symbol, at)
        except (psycopg.Error, PoolTimeout) as exc:
            log.warning("seeding %s: %s", name, exc)
            failed = True
        finally:
            if attempt == 0:
                self._seeding.pop(name, None)
        if name not in self._followers:
            return
        missing = self.live.seed(symbol, interval, candle) or failed
        if missing and attempt < RESEED_ATTEMPTS:
            # The database lags further behind Kafka than memory reaches: read it again soon.
            self._spawn(self._reseed(symbol, interval, attempt + 1))

    async def _reseed(self, symbol: str, interval: Interval, attempt: int) -> None:
        await asyncio.sleep(RESEED_SECONDS)
        await self._seed(symbol, interval, attempt)

    def _read_day(self, symbol: str) -> asyncio.Task[None]:
        task = self._day_reading.get(symbol)
        if task is None:
            task = self._day_reading[symbol] = self._spawn(self._day(symbol))
        return task

    async def _day(self, symbol: str) -> None:
        try:
            async with self._pool.connection() as conn:
                day = await last_day(conn, symbol)
            if day is not None:
                self._day_open[symbol], self._day_close[symbol] = day.open, day.close
        except (psycopg.Error, PoolTimeout) as exc:
            log.warning("24h ticker of %s: %s", symbol, exc)
        finally:
            self._day_read_at[symbol] = time.monotonic()
            self._day_reading.pop(symbol, None)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
