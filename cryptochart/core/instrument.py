"""A symbol's precision: its tick size (price step) and lot size (quantity step).

Sources declare them (Binance from ``exchangeInfo``, the simulated feed from its price level, a
replay from its files' digits); the producer publishes them to a compacted Kafka topic keyed by
symbol, the inserter stores them in ``symbol_info`` and the API reads them from there. On the wire
the sizes are exact decimal strings, as klines' prices are.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from cryptochart.core.kline import InvalidKline, check_symbol


class Instrument(msgspec.Struct, frozen=True, rename="camel"):
    """The steps a symbol's prices and quantities move in, e.g. 0.01 and 0.00001 for BTCUSDT."""

    symbol: str
    tick_size: Decimal
    lot_size: Decimal


def step_of(decimals: int) -> Decimal:
    """The step of a number written with ``decimals`` places: 2 → 0.01, 0 → 1."""
    return Decimal(1).scaleb(-decimals)


def decimals_of(step: Decimal) -> int:
    """Places after the point a step needs: 0.01 → 2, 0.00500000 → 3, 10 → 0."""
    exponent = step.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


def validate_instrument(instrument: Instrument) -> Instrument:
    """Return ``instrument`` if its symbol is well formed and both steps positive and finite."""
    symbol = instrument.symbol
    check_symbol(symbol)
    for name, step in (("tick size", instrument.tick_size), ("lot size", instrument.lot_size)):
        if not step.is_finite() or step <= 0:
            raise InvalidKline("bad_step", f"{symbol} {name} must be positive: {step}")
    return instrument


_encoder = msgspec.json.Encoder(decimal_format="string")
_decoder = msgspec.json.Decoder(Instrument)


def encode_instrument(instrument: Instrument) -> bytes:
    """The Kafka value: ``{"symbol":…,"tickSize":"0.01","lotSize":"0.00001"}``."""
    return _encoder.encode(instrument)


def decode_instrument(value: bytes) -> Instrument:
    """Parse a Kafka value written by :func:`encode_instrument`; raises msgspec errors."""
    return _decoder.decode(value)
