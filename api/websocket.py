"""``/ws``: one live connection, subscribing to kline, ticker and status channels.

Every frame for the socket, replies and channel updates alike, goes through its outbox
(api/fanout.py): written straight to the connection while it takes them, else queued and sent in
order by the socket's one writer task. A client that stops reading blocks only its own writer,
while its outbox drops its oldest frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, NamedTuple

import msgspec
import psycopg
from litestar import WebSocket, websocket
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
from cryptochart.api.fanout import Fanout, Outbox
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
from cryptochart.api.wire import writer_of

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
        fanout: NamedDependency[Fanout],
        hub: NamedDependency[Hub],
        catalog: NamedDependency[Catalog],
        config: ApiConfig,
    ) -> None:
        self._socket = socket
        self._fanout = fanout
        self._hub = hub
        self._catalog = catalog
        self._config = config
        self._outbox = Outbox(self._send, config.ws_backlog, writer_of(socket.scope))
        self._writer: asyncio.Task[None] | None = None
        self._subscriptions: dict[str, Channel] = {}
        self._status = False
        # Each subscribe may read the database (the current candle): bounded per socket.
        self._rate = MessageRate(config.ws_messages_per_second)

    async def _send(self, data: bytes) -> None:
        await self._socket.send_data(data, mode="text")
        FRAMES_SENT.inc()

    def _reply(self, frame: Frame) -> None:
        self._put(encode(frame))

    def _put(self, data: bytes) -> None:
        if self._outbox.put(data):
            FRAMES_SENT.inc()

    def _follow(self, channel: str) -> None:
        self._fanout.subscribe(channel, self._outbox)
        self._bound_outbox()

    def _unfollow(self, channel: str) -> None:
        self._fanout.unsubscribe(channel, self._outbox)
        self._bound_outbox()

    def _bound_outbox(self) -> None:
        """``ws_backlog`` frames per channel followed (the status channel included)."""
        self._outbox.limit = self._config.ws_backlog * (1 + len(self._subscriptions))

    async def _close(self, code: int, reason: str) -> None:
        await self._stop_writer()
        await self._socket.close(code, reason)

    async def _stop_writer(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer

    async def run(self) -> None:
        self._writer = asyncio.create_task(self._outbox.run(), name="ws-writer")
        self._put(self._hub.status_frame())
        self._status = True
        self._hub.follow_status()
        self._follow(STATUS_CHANNEL)
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
                await self._close(WS_1009_MESSAGE_TOO_BIG, f"frame over {limit} bytes")
                return
            if not self._rate.allow():
                rate = self._rate.limit
                await self._close(WS_1008_POLICY_VIOLATION, f"over {rate} messages per second")
                return
            try:
                await self._handle(raw)
            except BadRequest as exc:
                self._reply(ErrorFrame(exc.error, exc.detail))

    async def _handle(self, raw: bytes) -> None:
        try:
            op = decode_op(raw)
        except msgspec.DecodeError as exc:
            raise BadRequest("bad_frame", f"not JSON: {exc}") from None
        except msgspec.ValidationError as exc:
            raise BadRequest("bad_frame", str(exc)) from None
        if isinstance(op, Ping):
            self._reply(PongFrame())
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
        # The acknowledgement goes first: every frame after it belongs to the subscription.
        self._reply(SubscribedFrame(op.channel, [c.symbol for c in wanted], op.interval))
        for channel in new:
            self._subscriptions[channel.name] = channel
            if channel.interval is None:
                snapshot = await self._hub.follow_ticker(channel.symbol)
            else:
                snapshot = await self._hub.follow_kline(channel.symbol, channel.interval)
            # The snapshot, then every update after it: nothing awaited in between.
            if snapshot is not None:
                self._put(snapshot)
            self._follow(channel.name)

    async def _unsubscribe(self, op: Unsubscribe) -> None:
        wanted = self._channels_of(op)
        self._drop([c.name for c in wanted if c.name in self._subscriptions])
        self._reply(UnsubscribedFrame(op.channel, [c.symbol for c in wanted], op.interval))

    def _drop(self, names: list[str]) -> None:
        for name in names:
            channel = self._subscriptions.pop(name)
            self._unfollow(name)
            if channel.interval is None:
                self._hub.unfollow_ticker(channel.symbol)
            else:
                self._hub.unfollow_kline(channel.symbol, channel.interval)

    async def close(self) -> None:
        self._drop(list(self._subscriptions))
        if self._status:
            self._unfollow(STATUS_CHANNEL)
            self._hub.unfollow_status()
        await self._stop_writer()


@websocket("/ws", name="live")
async def live_socket(
    socket: WebSocket[Any, Any, Any],
    fanout: NamedDependency[Fanout],
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
    session = Session(socket, fanout, hub, catalog, api_config)
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
