"""The WebSocket protocol: client operations in, server frames out (msgspec structs)."""

from __future__ import annotations

from typing import Literal

import msgspec

from cryptochart.api.candles import LiveRow


class Subscribe(msgspec.Struct, tag_field="op", tag="subscribe"):
    channel: Literal["kline", "ticker"]
    symbols: list[str]
    interval: str | None = None


class Unsubscribe(msgspec.Struct, tag_field="op", tag="unsubscribe"):
    channel: Literal["kline", "ticker"]
    symbols: list[str]
    interval: str | None = None


class Ping(msgspec.Struct, tag_field="op", tag="ping"):
    pass


ClientOp = Subscribe | Unsubscribe | Ping


class _Frame(msgspec.Struct, tag_field="type", rename="camel", omit_defaults=True):
    pass


class KlineFrame(_Frame, tag="kline"):
    symbol: str
    interval: str
    k: LiveRow
    closed: bool
    event_time: int
    sent_time: int
    snapshot: bool = False  # the state on subscribing, not a new event: no latency sample


class TickerFrame(_Frame, tag="ticker"):
    symbol: str
    last_price: str
    event_time: int
    sent_time: int
    price_change_percent: str | None = None
    snapshot: bool = False


class StatusFrame(_Frame, tag="status"):
    source: str


class ErrorFrame(_Frame, tag="error"):
    error: str
    detail: str = ""


class PongFrame(_Frame, tag="pong"):
    pass


class SubscribedFrame(_Frame, tag="subscribed"):
    channel: str
    symbols: list[str]
    interval: str | None = None


class UnsubscribedFrame(_Frame, tag="unsubscribed"):
    channel: str
    symbols: list[str]
    interval: str | None = None


Frame = (
    KlineFrame
    | TickerFrame
    | StatusFrame
    | ErrorFrame
    | PongFrame
    | SubscribedFrame
    | UnsubscribedFrame
)

decode_op = msgspec.json.Decoder(ClientOp).decode
encode = msgspec.json.Encoder().encode


def kline_channel(symbol: str, interval: str) -> str:
    return f"kline:{symbol}:{interval}"


def ticker_channel(symbol: str) -> str:
    return f"ticker:{symbol}"


STATUS_CHANNEL = "status"
