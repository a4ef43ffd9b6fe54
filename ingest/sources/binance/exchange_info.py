"""Binance's ``/api/v3/exchangeInfo`` answer turned into :class:`Instrument` values.

Each listed symbol carries filters; ``PRICE_FILTER.tickSize`` is the price step and
``LOT_SIZE.stepSize`` the quantity step, as decimal strings (``"0.01000000"``). A zero disables a
filter on the exchange, so a symbol with a zero or missing step declares nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from decimal import Decimal, InvalidOperation

import msgspec

from cryptochart.core.instrument import Instrument

log = logging.getLogger(__name__)


class _Filter(msgspec.Struct, rename="camel"):
    filter_type: str
    tick_size: str | None = None
    step_size: str | None = None


class _Symbol(msgspec.Struct):
    symbol: str
    filters: list[_Filter] = []


class _ExchangeInfo(msgspec.Struct):
    symbols: list[_Symbol]


_decoder = msgspec.json.Decoder(_ExchangeInfo)


class UnreadableExchangeInfo(ValueError):
    """The answer is not an exchangeInfo document."""


def instruments_from_exchange_info(raw: bytes, wanted: Collection[str]) -> list[Instrument]:
    """The instruments of the ``wanted`` symbols listed in ``raw``, in its order."""
    try:
        info = _decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise UnreadableExchangeInfo(str(exc)) from None
    out = []
    for entry in info.symbols:
        if entry.symbol not in wanted:
            continue
        steps = {f.filter_type: f for f in entry.filters}
        tick = _step(steps.get("PRICE_FILTER"), "tick_size")
        lot = _step(steps.get("LOT_SIZE"), "step_size")
        if tick is None or lot is None:
            log.warning(
                "binance: %s lists no tick or lot size; its precision stays unknown", entry.symbol
            )
            continue
        out.append(Instrument(entry.symbol, tick, lot))
    return out


def _step(found: _Filter | None, field: str) -> Decimal | None:
    text = None if found is None else getattr(found, field)
    try:
        step = Decimal(text) if text is not None else None
    except InvalidOperation:
        return None
    if step is None or not step.is_finite() or step <= 0:
        return None
    return step.normalize()
