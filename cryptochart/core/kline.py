"""The kline record: one candle of one symbol, exactly as every stage after the source sees it.

Prices and volumes are ``Decimal`` parsed from the exchange's strings; on the wire (Kafka values)
they are written back as the same decimal strings, so no stage ever rounds through a float.
"""

from __future__ import annotations

import time
from decimal import Decimal

import msgspec

# How far ahead of this machine's clock a kline may start: exchange clocks drift a little, but a
# kline from the future would become every view's newest candle and the minute job's watermark.
FUTURE_SKEW_MS = 60_000


class Kline(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """A kline. Times are Unix milliseconds; ``closed`` is false while the candle is in progress."""

    symbol: str
    open_time: int
    close_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quote_volume: Decimal
    trades: int
    taker_buy_base_volume: Decimal
    taker_buy_quote_volume: Decimal
    closed: bool = True
    event_time: int = 0  # when the exchange emitted it (ms); 0 when unknown


KLINE_COLUMNS = (
    "symbol", "open_time", "close_time", "open", "high", "low", "close", "volume",
    "quote_volume", "trades", "taker_buy_base_volume", "taker_buy_quote_volume",
)  # fmt: skip


def row(kline: Kline) -> tuple[object, ...]:
    """The kline's values in the order of :data:`KLINE_COLUMNS` (``kline_1s``'s columns)."""
    return msgspec.structs.astuple(kline)[: len(KLINE_COLUMNS)]


def candle(kline: Kline) -> tuple[object, ...]:
    """The kline's values after its symbol: open_time … taker_buy_quote_volume."""
    return msgspec.structs.astuple(kline)[1 : len(KLINE_COLUMNS)]


class InvalidKline(ValueError):
    """A kline that breaks an invariant; ``kind`` names which one, for counting."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


def check_symbol(symbol: str) -> None:
    """Raise InvalidKline (bad_symbol) unless ``symbol`` is 1-20 ASCII capitals and digits."""
    if not (symbol.isascii() and symbol.isalnum() and symbol.isupper() and len(symbol) <= 20):
        raise InvalidKline("bad_symbol", f"symbol {symbol[:40]!r} is not 1-20 capitals and digits")


def validate(kline: Kline, now_ms: int | None = None) -> Kline:
    """Return ``kline`` if it is consistent and not from the future (``now_ms``: this machine's
    clock, read here when not given), else raise InvalidKline."""
    check_symbol(kline.symbol)
    prices = (kline.open, kline.high, kline.low, kline.close)
    if any(not p.is_finite() or p <= 0 for p in prices):
        raise InvalidKline("bad_price", f"{kline.symbol} prices must be positive: {prices}")
    if kline.high < kline.low:
        raise InvalidKline("high_below_low", f"{kline.symbol} high {kline.high} < low {kline.low}")
    if not (kline.low <= kline.open <= kline.high and kline.low <= kline.close <= kline.high):
        raise InvalidKline("open_close_outside_range", f"{kline.symbol} at {kline.open_time}")
    volumes = (
        kline.volume,
        kline.quote_volume,
        kline.taker_buy_base_volume,
        kline.taker_buy_quote_volume,
    )
    if any(not v.is_finite() or v < 0 for v in volumes) or kline.trades < 0:
        raise InvalidKline("negative_volume", f"{kline.symbol} at {kline.open_time}")
    if kline.close_time < kline.open_time:
        raise InvalidKline("close_before_open", f"{kline.symbol} at {kline.open_time}")
    now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    if kline.open_time > now + FUTURE_SKEW_MS:
        raise InvalidKline("from_the_future", f"{kline.symbol} opens at {kline.open_time}")
    return kline


_encoder = msgspec.json.Encoder(decimal_format="string")
_decoder = msgspec.json.Decoder(Kline)


def encode(kline: Kline) -> bytes:
    """The Kafka value of a kline: a compact JSON array, decimals as exact strings."""
    return _encoder.encode(kline)


def decode(value: bytes) -> Kline:
    """Parse a Kafka value written by :func:`encode`; raises msgspec.ValidationError/DecodeError."""
    return _decoder.decode(value)
