"""Binance's kline wire formats turned into :class:`Kline` values.

Three shapes carry the same candle: a combined-stream WebSocket message, a row of the REST
``/api/v3/klines`` answer and a row of the public CSV dumps (data.binance.vision). Each parser
returns a valid kline or raises :class:`InvalidKline` whose ``kind`` names what was wrong.
Prices and volumes go from the exchange's decimal strings straight to ``Decimal``, never through a
float.
"""

from __future__ import annotations

import re
from collections.abc import Container, Sequence
from decimal import Decimal
from typing import TypeVar

import msgspec

from cryptochart.core.kline import InvalidKline, Kline, validate

# Intervals whose candles start at multiples of their length (weeks and months do not).
INTERVAL_MS = {
    "1s": 1_000,
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
}

_DECIMAL = re.compile(r"-?[0-9]{1,30}(\.[0-9]{1,30})?")
_INTEGER = re.compile(r"-?[0-9]{1,20}")
_LAST_MS = 10**13  # year 2286: anything later is not a millisecond timestamp
_MICROSECONDS_FROM = 10**14  # dumps from 2025 on count microseconds; milliseconds stay far below
_MAX_COUNT = 2**62  # trade counts must fit the database's bigint with room to sum

_T = TypeVar("_T")


class ServerShutdown(msgspec.Struct, frozen=True):
    """Binance's notice that this connection's server is going away: open a new one now."""

    event_time: int


class ControlReply(msgspec.Struct, frozen=True):
    """The answer to a SUBSCRIBE (or other control) request; ``error`` is None on success."""

    request_id: int | str | None
    error: str | None


StreamMessage = Kline | ServerShutdown | ControlReply


def stream_name(symbol: str, interval: str = "1s") -> str:
    """The combined-stream name of a symbol's klines, e.g. ``btcusdt@kline_1s``."""
    return f"{symbol.lower()}@kline_{interval}"


class _WireKline(
    msgspec.Struct,
    rename={
        "open_time": "t",
        "close_time": "T",
        "symbol": "s",
        "interval": "i",
        "open": "o",
        "close": "c",
        "high": "h",
        "low": "l",
        "volume": "v",
        "trades": "n",
        "closed": "x",
        "quote_volume": "q",
        "taker_buy_base_volume": "V",
        "taker_buy_quote_volume": "Q",
    },
):
    open_time: int
    close_time: int
    symbol: str
    interval: str
    open: str
    close: str
    high: str
    low: str
    volume: str
    trades: int
    closed: bool
    quote_volume: str
    taker_buy_base_volume: str
    taker_buy_quote_volume: str


class _KlineEvent(
    msgspec.Struct,
    tag_field="e",
    tag="kline",
    rename={"event_time": "E", "symbol": "s", "kline": "k"},
):
    event_time: int
    symbol: str
    kline: _WireKline


class _ShutdownEvent(
    msgspec.Struct, tag_field="e", tag="serverShutdown", rename={"event_time": "E"}
):
    event_time: int


class _Frame(msgspec.Struct):
    stream: str | None = None
    data: msgspec.Raw = msgspec.Raw()
    id: int | str | msgspec.UnsetType | None = msgspec.UNSET
    code: int | None = None
    msg: str | None = None


_frame_decoder = msgspec.json.Decoder(_Frame)
_event_decoder = msgspec.json.Decoder(_KlineEvent | _ShutdownEvent)
_page_decoder = msgspec.json.Decoder(list[object])


def parse_stream_message(
    raw: bytes | str, symbols: Container[str] | None = None, interval: str = "1s"
) -> StreamMessage:
    """One combined-stream message: a kline, a serverShutdown notice or a control reply.

    ``symbols``, when given, is the set the connection asked for; any other symbol is rejected.
    """
    frame = _decode(_frame_decoder, raw)
    if frame.stream is None:
        if isinstance(frame.id, msgspec.UnsetType):
            raise InvalidKline("missing_field", "message has neither `stream` nor `id`")
        error = None if frame.code is None else f"code {frame.code}: {frame.msg}"
        return ControlReply(request_id=frame.id, error=error)
    if not frame.data:
        raise InvalidKline("missing_field", "combined-stream message without `data`")
    event = _decode(_event_decoder, frame.data)
    if isinstance(event, _ShutdownEvent):
        return ServerShutdown(event_time=event.event_time)
    return _kline_from_event(frame.stream, event, symbols, interval)


def decode_rest_page(body: bytes) -> list[object]:
    """The rows of a ``/api/v3/klines`` answer, each to be parsed by :func:`kline_from_rest_row`."""
    return _decode(_page_decoder, body)


def kline_from_rest_row(symbol: str, row: object, interval: str | None = "1s") -> Kline:
    """One row of ``/api/v3/klines``: open time, o, h, l, c, v, close time, q, n, V, Q, ignore."""
    if not isinstance(row, list) or len(row) < 11:
        raise InvalidKline("bad_row", f"{symbol}: expected an array of 12 fields, got {row!r:.80}")
    open_time = _json_int("open_time", row[0])
    close_time = _json_int("close_time", row[6])
    trades = _json_int("trades", row[8])
    return _kline_from_row(symbol, open_time, close_time, trades, row, interval)


def kline_from_csv_row(symbol: str, row: Sequence[str], interval: str | None = None) -> Kline:
    """One row of a Binance CSV dump; its times count milliseconds, or microseconds from 2025."""
    if len(row) < 11:
        raise InvalidKline("bad_row", f"{symbol}: expected 12 columns, got {len(row)}")
    open_time = _csv_time("open_time", row[0])
    close_time = _csv_time("close_time", row[6])
    trades = _text_int("trades", row[8])
    return _kline_from_row(symbol, open_time, close_time, trades, row, interval)


def _decode(decoder: msgspec.json.Decoder[_T], raw: bytes | str) -> _T:
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError as exc:  # a subclass of DecodeError: catch it first
        raise InvalidKline(_validation_kind(exc), str(exc)) from None
    except msgspec.DecodeError as exc:
        raise InvalidKline("not_json", str(exc)) from None
    except RecursionError:  # msgspec's answer to absurdly deep nesting
        raise InvalidKline("not_json", "nested too deeply") from None


def _validation_kind(error: msgspec.ValidationError) -> str:
    text = str(error)
    if text.startswith("Object missing required field"):
        return "missing_field"
    if text.startswith("Invalid value") and text.endswith("`$.e`"):
        return "unexpected_event"
    return "bad_type"


def _kline_from_event(
    stream: str, event: _KlineEvent, symbols: Container[str] | None, interval: str
) -> Kline:
    wire = event.kline
    if wire.symbol != event.symbol:
        raise InvalidKline("inconsistent_symbol", f"event {event.symbol!r} carries {wire.symbol!r}")
    if symbols is not None and wire.symbol not in symbols:
        raise InvalidKline("unknown_symbol", f"{wire.symbol!r} was not subscribed")
    if wire.interval != interval:
        raise InvalidKline("wrong_interval", f"{wire.symbol} interval {wire.interval!r}")
    if stream != stream_name(wire.symbol, wire.interval):
        raise InvalidKline("inconsistent_stream", f"stream {stream!r} carries {wire.symbol!r}")
    _check_times(wire.symbol, wire.open_time, wire.close_time, interval)
    _check_time("event_time", event.event_time)
    _check_count(wire.trades)
    return validate(
        Kline(
            symbol=wire.symbol,
            open_time=wire.open_time,
            close_time=wire.close_time,
            open=_decimal("open", wire.open),
            high=_decimal("high", wire.high),
            low=_decimal("low", wire.low),
            close=_decimal("close", wire.close),
            volume=_decimal("volume", wire.volume),
            quote_volume=_decimal("quote_volume", wire.quote_volume),
            trades=wire.trades,
            taker_buy_base_volume=_decimal("taker_buy_base_volume", wire.taker_buy_base_volume),
            taker_buy_quote_volume=_decimal("taker_buy_quote_volume", wire.taker_buy_quote_volume),
            closed=wire.closed,
            event_time=event.event_time,
        )
    )


def _kline_from_row(
    symbol: str,
    open_time: int,
    close_time: int,
    trades: int,
    row: Sequence[object],
    interval: str | None,
) -> Kline:
    _check_times(symbol, open_time, close_time, interval)
    _check_count(trades)
    return validate(
        Kline(
            symbol=symbol,
            open_time=open_time,
            close_time=close_time,
            open=_decimal("open", row[1]),
            high=_decimal("high", row[2]),
            low=_decimal("low", row[3]),
            close=_decimal("close", row[4]),
            volume=_decimal("volume", row[5]),
            quote_volume=_decimal("quote_volume", row[7]),
            trades=trades,
            taker_buy_base_volume=_decimal("taker_buy_base_volume", row[9]),
            taker_buy_quote_volume=_decimal("taker_buy_quote_volume", row[10]),
        )
    )


def _decimal(field: str, value: object) -> Decimal:
    if not isinstance(value, str) or not _DECIMAL.fullmatch(value):
        raise InvalidKline("bad_number", f"{field} {value!r:.40} is not a decimal string")
    return Decimal(value)


def _json_int(field: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidKline("bad_number", f"{field} {value!r:.40} is not an integer")
    return value


def _text_int(field: str, value: str) -> int:
    if not _INTEGER.fullmatch(value):
        raise InvalidKline("bad_number", f"{field} {value!r:.40} is not an integer")
    return int(value)


def _csv_time(field: str, value: str) -> int:
    number = _text_int(field, value)
    return number // 1000 if number >= _MICROSECONDS_FROM else number


def _check_time(field: str, value: int) -> None:
    if not 0 <= value < _LAST_MS:
        raise InvalidKline("bad_time", f"{field} {value} is not a millisecond timestamp")


def _check_times(symbol: str, open_time: int, close_time: int, interval: str | None) -> None:
    _check_time("open_time", open_time)
    _check_time("close_time", close_time)
    length = INTERVAL_MS.get(interval) if interval is not None else None
    if length is None:
        return
    if open_time % length:
        raise InvalidKline("misaligned_open_time", f"{symbol} {interval} opens at {open_time}")
    if close_time != open_time + length - 1:
        raise InvalidKline("bad_close_time", f"{symbol} {interval} {open_time}..{close_time}")


def _check_count(trades: int) -> None:
    if trades >= _MAX_COUNT:
        raise InvalidKline("bad_number", f"trade count {trades} is out of range")
