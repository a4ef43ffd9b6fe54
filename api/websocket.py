"""``/ws``: one live connection, subscribing to kline, ticker and status channels.

Every subscription gets its own ChannelsPlugin subscriber, sending from a background task; a
lock keeps frames whole on the socket. A client that stops reading blocks only its own sends,
while its backlogs drop their oldest frames.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack
from typing import Any, NamedTuple

import msgspec
import psycopg
from litestar import WebSocket, websocket
from litestar.channels import ChannelsPlugin, Subscriber
from litestar.di import NamedDependency
from litestar.exceptions import WebSocketDisconnect
from litestar.status_codes import (
    WS_1008_POLICY_VIOLATION,
    WS_1009_MESSAGE_TOO_BIG,
    WS_1013_TRY_AGAIN_LATER,
)
from psycopg_pool import PoolTimeout

from cryptochart.api.catalog import Catalog
from cryptochart.api.config import ApiConfig
from cryptochart.api.frames import (
    STATUS_CHANNEL,
    ErrorFrame,
    Frame,
    Ping,
    PongFrame,
    Subscribe,
    SubscribedFrame,
    Unsubscribe,
    UnsubscribedFrame,
    decode_op,
    encode,
    kline_channel,
    ticker_channel,
)
from cryptochart.api.hub import Hub
from cryptochart.api.intervals import INTERVALS, Interval
from cryptochart.api.limits import MessageRate, SocketsPerAddress
from cryptochart.api.metrics import FRAMES_SENT, WS_CLIENTS

log = logging.getLogger(__name__)


class Channel(NamedTuple):
    name: str
    symbol: str
    interval: Interval | None  # None: the symbol's ticker


class BadRequest(Exception):
    def __init__(self, error: str, detail: str) -> None:
        super().__init__(detail)
        self.error = error
        self.detail = detail


def origin_allowed(origin: str | None, allowed: tuple[str, ...]) -> bool:
    # Browsers always send Origin; other clients may omit it (and could forge it anyway).
    return origin is None or "*" in allowed or origin in allowed


class Session:
    def __init__(
        self,
        socket: WebSocket[Any, Any, Any],
        channels: NamedDependency[ChannelsPlugin],
        hub: NamedDependency[Hub],
        catalog: NamedDependency[Catalog],
        config: ApiConfig,
    ) -> None:
        self._socket = socket
        self._channels = channels
        self._hub = hub
        self._catalog = catalog
        self._config = config
        self._lock = asyncio.Lock()
        self._senders = AsyncExitStack()
        # channel name -> (channel, its subscriber; None while being followed)
        self._subscriptions: dict[str, tuple[Channel, Subscriber | None]] = {}
        self._status: Subscriber | None = None
        # Each subscribe may read the database (the current candle): bounded per socket.
        self._rate = MessageRate(config.ws_messages_per_second)

    async def send(self, data: bytes) -> None:
        async with self._lock:
            await self._socket.send_data(data, mode="text")
        FRAMES_SENT.inc()

    async def _deliver(self, data: bytes) -> None:
        try:
            await self.send(data)
        except Exception:  # the client went away; the receive loop will notice and clean up
            log.debug("send to a closed socket", exc_info=True)

    async def _reply(self, frame: Frame) -> None:
        await self.send(encode(frame))

    async def run(self) -> None:
        await self.send(self._hub.status_frame())
        self._status = await self._channels.subscribe(STATUS_CHANNEL)
        self._hub.follow_status()
        await self._senders.enter_async_context(
            self._status.run_in_background(self._deliver, join=False)
        )
        limit = self._config.ws_max_frame_bytes
        while True:
            event = await self._socket.receive()
            if event["type"] == "websocket.disconnect":
                return
            text, binary = event.get("text"), event.get("bytes")
            raw = text.encode() if isinstance(text, str) else binary
            if not isinstance(raw, bytes):
                raw = b""
            if len(raw) > limit:
                async with self._lock:
                    await self._socket.close(WS_1009_MESSAGE_TOO_BIG, f"frame over {limit} bytes")
                return
            if not self._rate.allow():
                rate = self._rate.limit
                async with self._lock:
                    await self._socket.close(
                        WS_1008_POLICY_VIOLATION, f"over {rate} messages per second"
                    )
                return
            try:
                await self._handle(raw)
            except BadRequest as exc:
                await self._reply(ErrorFrame(exc.error, exc.detail))

    async def _handle(self, raw: bytes) -> None:
        try:
            op = decode_op(raw)
        except msgspec.DecodeError as exc:
            raise BadRequest("bad_frame", f"not JSON: {exc}") from None
        except msgspec.ValidationError as exc:
            raise BadRequest("bad_frame", str(exc)) from None
        if isinstance(op, Ping):
            await self._reply(PongFrame())
        elif isinstance(op, Subscribe):
            await self._subscribe(op)
        else:
            await self._unsubscribe(op)

    def _channels_of(self, op: Subscribe | Unsubscribe) -> list[Channel]:
        if not op.symbols:
            raise BadRequest("bad_frame", "symbols: at least one symbol")
        if len(op.symbols) > self._config.ws_max_subscriptions:
            raise BadRequest(
                "too_many_subscriptions",
                f"at most {self._config.ws_max_subscriptions} channels per connection",
            )
        interval: Interval | None = None
        if op.channel == "kline":
            if op.interval not in INTERVALS:
                raise BadRequest(
                    "unknown_interval",
                    f"interval: {op.interval!r} is not one of {', '.join(INTERVALS)}",
                )
            interval = INTERVALS[op.interval]
        out: dict[str, Channel] = {}
        for raw in op.symbols:
            symbol = raw.strip().upper()
            if interval is None:
                name = ticker_channel(symbol)
            else:
                name = kline_channel(symbol, interval.name)
            out[name] = Channel(name, symbol, interval)
        return list(out.values())

    async def _subscribe(self, op: Subscribe) -> None:
        wanted = self._channels_of(op)
        for channel in wanted:
            try:
                known = await self._catalog.exists(channel.symbol)
            except (psycopg.Error, PoolTimeout):
                raise BadRequest("unavailable", "the database is unavailable; retry") from None
            if not known:
                raise BadRequest("unknown_symbol", f"symbols: {channel.symbol!r} is not a symbol")
        new = [c for c in wanted if c.name not in self._subscriptions]
        limit = self._config.ws_max_subscriptions
        if len(self._subscriptions) + len(new) > limit:
            raise BadRequest(
                "too_many_subscriptions",
                f"at most {limit} channels per connection; {len(self._subscriptions)} taken",
            )
        snapshots = []
        for channel in new:
            self._subscriptions[channel.name] = (channel, None)
            if channel.interval is None:
                snapshot = await self._hub.follow_ticker(channel.symbol)
            else:
                snapshot = await self._hub.follow_kline(channel.symbol, channel.interval)
            if snapshot is not None:
                snapshots.append(snapshot)
        subscriber = await self._channels.subscribe([c.name for c in new]) if new else None
        for channel in new:
            self._subscriptions[channel.name] = (channel, subscriber)
        if subscriber is not None:
            for snapshot in snapshots:  # queued ahead of any update
                subscriber.put_nowait(snapshot)
        # The acknowledgement goes first: every frame after it belongs to the subscription.
        await self._reply(SubscribedFrame(op.channel, [c.symbol for c in wanted], op.interval))
        if subscriber is not None:
            await self._senders.enter_async_context(
                subscriber.run_in_background(self._deliver, join=False)
            )

    async def _unsubscribe(self, op: Unsubscribe) -> None:
        wanted = self._channels_of(op)
        await self._drop([c.name for c in wanted if c.name in self._subscriptions])
        await self._reply(UnsubscribedFrame(op.channel, [c.symbol for c in wanted], op.interval))

    async def _drop(self, names: list[str]) -> None:
        by_subscriber: dict[Subscriber, list[str]] = {}
        for name in names:
            channel, subscriber = self._subscriptions.pop(name)
            if channel.interval is None:
                self._hub.unfollow_ticker(channel.symbol)
            else:
                self._hub.unfollow_kline(channel.symbol, channel.interval)
            if subscriber is not None:
                by_subscriber.setdefault(subscriber, []).append(name)
        for subscriber, channel_names in by_subscriber.items():
            await self._channels.unsubscribe(subscriber, channel_names)

    async def close(self) -> None:
        await self._drop(list(self._subscriptions))
        if self._status is not None:
            self._hub.unfollow_status()
            await self._channels.unsubscribe(self._status, STATUS_CHANNEL)
        await self._senders.aclose()


@websocket("/ws", name="live")
async def live_socket(
    socket: WebSocket[Any, Any, Any],
    channels: NamedDependency[ChannelsPlugin],
    hub: NamedDependency[Hub],
    catalog: NamedDependency[Catalog],
    api_config: NamedDependency[ApiConfig],
    sockets: NamedDependency[SocketsPerAddress],
) -> None:
    """Live klines, tickers and the source status; see api/frames.py for the protocol."""
    if not origin_allowed(socket.headers.get("origin"), api_config.ws_origins):
        await socket.close(WS_1008_POLICY_VIOLATION, "origin not allowed")
        return
    address = socket.client.host if socket.client else "unknown"
    await socket.accept()
    if not sockets.admit(address):
        reason = f"at most {sockets.limit} connections per address"
        await socket.close(WS_1013_TRY_AGAIN_LATER, reason)
        return
    session = Session(socket, channels, hub, catalog, api_config)
    WS_CLIENTS.inc()
    hub.clients += 1
    try:
        await session.run()
    except WebSocketDisconnect:
        pass
    finally:
        sockets.release(address)
        hub.clients -= 1
        WS_CLIENTS.dec()
        await session.close()
