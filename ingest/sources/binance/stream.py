"""One shard of Binance kline streams kept flowing over WebSocket connections.

A shard is up to 1024 streams, Binance's limit per connection. Its feed reconnects with backoff
when a connection drops, and replaces a connection before Binance ends it (24 h cap, or a
``serverShutdown`` notice) by opening the successor first and closing the old one once the
successor delivers; the overlap's duplicates are removed downstream.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from cryptochart.core.backoff import Backoff
from cryptochart.core.kline import InvalidKline, Kline
from cryptochart.ingest.sources.base import Rejected
from cryptochart.ingest.sources.binance.messages import (
    ControlReply,
    ServerShutdown,
    parse_stream_message,
    stream_name,
)
from cryptochart.ingest.sources.pacing import SlidingWindowLimiter
from cryptochart.ingest.sources.rejections import Rejections

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConnectionPolicy:
    """Binance's documented WebSocket limits and how the feed keeps within them."""

    streams_per_connection: int = 1024
    rotate_after: float = 23 * 3600.0  # Binance cuts every connection at 24 h
    handover_timeout: float = 10.0  # longest wait for a successor's first message
    url_budget: int = 4000  # characters of stream names in the URL; the rest are SUBSCRIBEd
    streams_per_subscribe: int = 200
    # Binance allows 5 incoming frames a second per connection, pings and pongs included.
    control_messages_per_second: int = 3
    connects_per_window: int = 300  # Binance: 300 connection attempts per 5 minutes per IP
    connect_window: float = 300.0
    backoff_initial: float = 0.5
    backoff_max: float = 60.0
    ping_interval: float = 20.0
    open_timeout: float = 10.0


@dataclass(frozen=True)
class ConnectionOpened:
    shard: int
    symbols: tuple[str, ...]


@dataclass(frozen=True)
class ConnectionEnded:
    shard: int
    symbols: tuple[str, ...]
    reason: str


FeedEvent = Kline | Rejected | ConnectionOpened | ConnectionEnded


@dataclass(eq=False)
class _Live:
    ws: ClientConnection
    opened_at: float = field(default_factory=time.monotonic)
    first_message: asyncio.Event = field(default_factory=asyncio.Event)
    shutdown_notice: asyncio.Event = field(default_factory=asyncio.Event)
    reader: asyncio.Task[None] | None = None


class ShardFeed:
    """Delivers the klines of ``symbols`` (one connection's worth) to ``deliver``, forever."""

    def __init__(
        self,
        shard: int,
        symbols: Sequence[str],
        *,
        ws_url: str,
        deliver: Callable[[FeedEvent], Awaitable[None]],
        connect_limiter: SlidingWindowLimiter,
        rejections: Rejections,
        policy: ConnectionPolicy,
        interval: str = "1s",
    ) -> None:
        if not 0 < len(symbols) <= policy.streams_per_connection:
            raise ValueError(f"a shard carries 1..{policy.streams_per_connection} symbols")
        self.shard = shard
        self.symbols = tuple(symbols)
        self._symbol_set = frozenset(symbols)
        self._deliver = deliver
        self._connect_limiter = connect_limiter
        self._rejections = rejections
        self._policy = policy
        self._interval = interval
        self._backoff = Backoff(policy.backoff_initial, policy.backoff_max)
        self._url, self._late_streams = _combined_url(
            ws_url, [stream_name(s, interval) for s in symbols], policy.url_budget
        )
        self._live: set[_Live] = set()

    async def run(self) -> None:
        """Keep the shard connected until cancelled."""
        try:
            live = await self._open()
            while True:
                live = await self._keep(live)
        finally:
            for live in list(self._live):
                await self._discard(live)

    async def _keep(self, live: _Live) -> _Live:
        """Wait for ``live`` to end or need replacing; return the connection to carry on with."""
        assert live.reader is not None
        notice = asyncio.create_task(live.shutdown_notice.wait())
        rotate_in = live.opened_at + self._policy.rotate_after - time.monotonic()
        try:
            await asyncio.wait(
                {live.reader, notice},
                timeout=max(0.0, rotate_in),
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            notice.cancel()
        if live.reader.done():
            self._live.discard(live)
            if not live.reader.cancelled() and (error := live.reader.exception()) is not None:
                log.error("binance shard %d: reader failed: %r", self.shard, error)
            if not live.first_message.is_set():
                # Accepted then dropped without a word: do not hammer the server.
                await asyncio.sleep(self._backoff.next_delay())
            return await self._open()
        why = "serverShutdown" if live.shutdown_notice.is_set() else "connection age"
        log.info("binance shard %d: replacing connection (%s)", self.shard, why)
        successor = await self._open()
        assert successor.reader is not None
        delivered = asyncio.create_task(successor.first_message.wait())
        try:
            await asyncio.wait(
                {delivered, successor.reader},
                timeout=self._policy.handover_timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            delivered.cancel()
        await self._close(live)
        return successor

    async def _open(self) -> _Live:
        """Connect, retrying with backoff; the new connection is already being read."""
        while True:
            await self._connect_limiter.acquire()
            try:
                ws = await connect(
                    self._url,
                    ping_interval=self._policy.ping_interval,
                    ping_timeout=self._policy.ping_interval,
                    open_timeout=self._policy.open_timeout,
                )
            except (OSError, TimeoutError, InvalidHandshake) as exc:
                delay = _retry_after(exc) or self._backoff.next_delay()
                log.warning(
                    "binance shard %d: connect failed (%s: %s), retrying in %.1fs",
                    self.shard,
                    type(exc).__name__,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
                continue
            live = _Live(ws)
            self._live.add(live)
            log.info("binance shard %d: connected (%d streams)", self.shard, len(self.symbols))
            await self._deliver(ConnectionOpened(self.shard, self.symbols))
            live.reader = asyncio.create_task(self._read(live))
            return live

    async def _read(self, live: _Live) -> None:
        subscribing = asyncio.create_task(self._subscribe(live.ws)) if self._late_streams else None
        try:
            while True:
                await self._handle(live, await live.ws.recv(decode=False))
        except ConnectionClosed as exc:
            close = exc.rcvd
            reason = f"code {close.code} {close.reason}".strip() if close else "no close frame"
        finally:
            if subscribing is not None:
                subscribing.cancel()
        log.info("binance shard %d: connection ended (%s)", self.shard, reason)
        await self._deliver(ConnectionEnded(self.shard, self.symbols, reason))

    async def _handle(self, live: _Live, raw: bytes) -> None:
        live.first_message.set()
        self._backoff.reset()
        try:
            message = parse_stream_message(raw, self._symbol_set, self._interval)
        except InvalidKline as exc:
            await self._deliver(self._rejections.record(exc, raw))
            return
        if isinstance(message, Kline):
            await self._deliver(message)
        elif isinstance(message, ServerShutdown):
            log.info("binance shard %d: serverShutdown notice", self.shard)
            live.shutdown_notice.set()
        elif isinstance(message, ControlReply) and message.error is not None:
            log.error(
                "binance shard %d: request %s refused: %s",
                self.shard,
                message.request_id,
                message.error,
            )

    async def _subscribe(self, ws: ClientConnection) -> None:
        """SUBSCRIBE the streams that did not fit the URL, within the per-second message limit."""
        limiter = SlidingWindowLimiter(self._policy.control_messages_per_second, 1.0)
        size = self._policy.streams_per_subscribe
        for number, start in enumerate(range(0, len(self._late_streams), size), start=1):
            chunk = self._late_streams[start : start + size]
            await limiter.acquire()
            request = {"method": "SUBSCRIBE", "params": chunk, "id": number}
            await ws.send(msgspec.json.encode(request).decode())

    async def _close(self, live: _Live) -> None:
        await live.ws.close()
        if live.reader is not None:  # let it deliver what arrived before the close
            await asyncio.wait({live.reader}, timeout=self._policy.handover_timeout)
        await self._discard(live)

    async def _discard(self, live: _Live) -> None:
        self._live.discard(live)
        if live.reader is not None and not live.reader.done():
            live.reader.cancel()
            await asyncio.gather(live.reader, return_exceptions=True)
        live.ws.transport.abort()


def _combined_url(ws_url: str, streams: list[str], budget: int) -> tuple[str, list[str]]:
    """The combined-stream URL with as many streams as fit ``budget``, and the streams left over."""
    in_url, used = 1, len(streams[0])
    while in_url < len(streams) and used + 1 + len(streams[in_url]) <= budget:
        used += 1 + len(streams[in_url])
        in_url += 1
    return f"{ws_url.rstrip('/')}/stream?streams={'/'.join(streams[:in_url])}", streams[in_url:]


def _retry_after(error: Exception) -> float | None:
    """Seconds a rate-limited handshake (HTTP 429/418) was told to wait, if it was."""
    if not isinstance(error, InvalidStatus) or error.response.status_code not in (429, 418):
        return None
    try:
        return float(error.response.headers.get("Retry-After", ""))
    except ValueError:
        return None
