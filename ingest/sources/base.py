"""The one interface every kline source implements."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

import msgspec

from cryptochart.core.instrument import Instrument
from cryptochart.core.kline import Kline


class Rejected(msgspec.Struct, frozen=True):
    """Input a source could not turn into a valid kline; it goes to the dead-letter topic."""

    source: str
    kind: str  # e.g. "missing_field", "bad_number", "high_below_low", "unknown_symbol"
    detail: str
    raw: bytes


class KlineSource(Protocol):
    """An async stream of klines, closed and in progress, for a fixed set of symbols.

    Everything after the source (producer, Kafka, database) knows nothing of which source it is.
    Malformed input never ends the stream: it is yielded as :class:`Rejected`, and it goes on.
    """

    name: str

    def stream(self) -> AsyncIterator[Kline | Rejected]:
        """Yield until cancelled; closed klines of one symbol arrive in open_time order."""
        ...

    async def instruments(self) -> list[Instrument]:
        """The tick and lot size of each of its symbols that it knows (may be fewer, or none).
        The producer publishes them once as it starts; a failure here never stops the klines."""
        ...
