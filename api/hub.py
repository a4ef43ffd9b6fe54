"""What WebSocket clients follow, and each Kafka update encoded once and published to them.

Channels are ``kline:<SYMBOL>:<interval>``, ``ticker:<SYMBOL>`` and ``status``; the fan-out
(api/fanout.py) writes a published frame to every socket following its channel (or into its
outbox while the socket cannot take it).
The hub builds and encodes frames only for channels someone follows (``Followers``); a new kline
follower starts from the database's current candle (``Seeder``), a ticker follower from its
rolling day (``DayTickers``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import msgspec

from cryptochart.api import history
from cryptochart.api.background import Background
from cryptochart.api.candles import Candle
from cryptochart.api.consumer import Delivery
from cryptochart.api.day_tickers import DayReader, DayTickers
from cryptochart.api.followers import Followers
from cryptochart.api.frames import (
    STATUS_CHANNEL,
    Frame,
    KlineFrame,
    StatusFrame,
    encode,
    kline_channel,
    ticker_channel,
)
from cryptochart.api.intervals import INTERVALS, Interval
from cryptochart.api.live import LiveCandles
from cryptochart.api.metrics import FRAMES_PUBLISHED, labelled
from cryptochart.api.pool import Pool
from cryptochart.api.seeding import CurrentReader, Seeder
from cryptochart.api.tickers import last_day

log = logging.getLogger(__name__)

_ONE_SECOND = INTERVALS["1s"]
YIELD_SECONDS = 0.005


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Publisher(Protocol):
    """Where frames go: the fan-out, into the outboxes of a channel's sockets."""

    def publish(self, data: bytes, channel: str) -> None: ...


def database_readers(pool: Pool) -> tuple[DayReader, CurrentReader]:
    """The hub's two reads: a symbol's rolling day, and a followed channel's current candle."""

    async def read_day(symbol: str) -> Candle | None:
        async with pool.connection() as conn:
            return await last_day(conn, symbol)

    async def read_current(symbol: str, interval: Interval, known: int | None) -> Candle | None:
        async with pool.connection() as conn:
            at = known or await history.newest_second(conn, symbol)
            return None if at is None else await history.current(conn, interval, symbol, at)

    return read_day, read_current


def kline_frame(
    symbol: str, interval: Interval, candle: Candle, closed: bool, event_time: int, sent: int
) -> KlineFrame:
    return KlineFrame(symbol, interval.name, candle.live_row(), closed, event_time, sent)


class Hub:
    def __init__(
        self,
        fanout: Publisher,
        readers: tuple[DayReader, CurrentReader],
        saw_symbol: Callable[[str], None],
    ) -> None:
        self._fanout = fanout
        self._saw_symbol = saw_symbol
        self.live = LiveCandles()
        self.source = "unknown"  # the ``source`` header of the latest message
        self.last_event_time: int | None = None
        self.clients = 0
        self.batch_at = 0.0  # when the latest batch from Kafka started or ended (monotonic)
        self._followers = Followers()
        self._background = Background()
        read_day, read_current = readers
        self._day = DayTickers(read_day, self._background)
        self._seeder = Seeder(
            self.live, read_current, self._background, self._followers.__contains__
        )

    # --- following -------------------------------------------------------------------------

    def status_frame(self) -> bytes:
        return encode(StatusFrame(self.source))

    def follow_status(self) -> None:
        self._followers.add(STATUS_CHANNEL)

    def unfollow_status(self) -> None:
        self._followers.remove(STATUS_CHANNEL)

    async def follow_kline(self, symbol: str, interval: Interval) -> bytes | None:
        """Count one more follower; return the current candle's frame, if there is one yet."""
        first = self._followers.add(kline_channel(symbol, interval.name))
        if interval.finer is None:
            return None
        await self._seeder.seeded(symbol, interval, first)
        candle = self.live.snapshot(symbol, interval)
        if candle is None:
            return None
        now = now_ms()
        _, event_time = self._day.latest(symbol) or (None, now)
        frame = kline_frame(symbol, interval, candle, False, event_time, now)
        return encode(msgspec.structs.replace(frame, snapshot=True))

    def unfollow_kline(self, symbol: str, interval: Interval) -> None:
        last = self._followers.remove(kline_channel(symbol, interval.name))
        if last and interval.finer is not None:
            self.live.forget(symbol, interval)

    async def follow_ticker(self, symbol: str) -> bytes | None:
        self._followers.add(ticker_channel(symbol))
        frame = await self._day.snapshot(symbol, now_ms())
        return None if frame is None else encode(msgspec.structs.replace(frame, snapshot=True))

    def unfollow_ticker(self, symbol: str) -> None:
        self._followers.remove(ticker_channel(symbol))

    # --- Kafka updates ---------------------------------------------------------------------

    async def follow_feed(self, next_batch: Callable[[], Awaitable[list[Delivery]]]) -> None:
        """Publish the frames of every 1s kline the Kafka feed hands over, until cancelled."""
        while True:
            batch = await next_batch()
            self.batch_at = yielded = time.monotonic()
            for delivery in batch:
                try:
                    self.receive(delivery)
                except Exception:  # one bad update must not stop the live feed
                    log.exception("fan-out of %s failed", delivery.kline.symbol)
                # Let the loop in every few ms: sockets whose frames queued (a client reading
                # slowly) and requests run while a big batch (Kafka catching up) streams out.
                if time.monotonic() - yielded >= YIELD_SECONDS:
                    await asyncio.sleep(0)
                    yielded = time.monotonic()
            self.batch_at = time.monotonic()

    def receive(self, delivery: Delivery) -> None:
        """Publish the frames of one 1s kline."""
        kline, source, timestamp = delivery
        sent = now_ms()
        symbol = kline.symbol
        self._saw_symbol(symbol)
        if source and source != self.source:
            self.source = source
            self._publish(STATUS_CHANNEL, StatusFrame(source))
        event_time = kline.event_time or timestamp
        self.last_event_time = event_time
        self._day.saw(symbol, kline.close, event_time)
        updates = self.live.apply(kline)
        name = kline_channel(symbol, "1s")
        if name in self._followers:
            candle = Candle.of_kline(kline)
            frame = kline_frame(symbol, _ONE_SECOND, candle, kline.closed, event_time, sent)
            self._publish(name, frame)
        for update in updates:
            name = kline_channel(symbol, update.interval.name)
            if name in self._followers:
                frame = kline_frame(
                    symbol, update.interval, update.candle, update.closed, event_time, sent
                )
                self._publish(name, frame)
        name = ticker_channel(symbol)
        if name in self._followers:
            self._publish(name, self._day.frame(symbol, kline.close, event_time, sent))
            self._day.refresh_if_stale(symbol)

    def _publish(self, channel: str, frame: Frame) -> None:
        self._fanout.publish(encode(frame), channel)
        labelled(FRAMES_PUBLISHED, str(type(frame).__struct_config__.tag)).inc()

    async def close(self) -> None:
        await self._background.close()
