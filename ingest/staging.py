"""A batch of closed klines as lines of the staging table's text COPY.

Prices and volumes stay the exchange's decimal strings on the way in: PostgreSQL's ``numeric``
input parses them exactly, so the hot path never builds a ``Decimal`` (nor a float). A Kafka value
takes the fast path when it decodes with its decimals as strings, is closed, names a valid symbol
and does not start in the future; the consistency checks of
:func:`cryptochart.core.kline.validate` then run in SQL (the staging table's ``kind``, in the same
order). Every other value takes the exact path: decoded to ``Decimal`` and validated in Python,
so each one is stored, skipped or set aside with exactly the kind it always had.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import msgspec

from cryptochart.core.kline import FUTURE_SKEW_MS, Kline, check_symbol, decode, validate

COLUMNS = 13  # seq + kline_1s's 12 columns
# More distinct valid symbols than any exchange lists; past it the cache starts afresh.
_SYMBOL_CACHE_LIMIT = 100_000


class TextKline(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """A Kafka value of :class:`~cryptochart.core.kline.Kline` with the decimals left as text."""

    symbol: str
    open_time: int
    close_time: int
    open: str
    high: str
    low: str
    close: str
    volume: str
    quote_volume: str
    trades: int
    taker_buy_base_volume: str
    taker_buy_quote_volume: str
    closed: bool = True
    event_time: int = 0


_text_decoder = msgspec.json.Decoder(TextKline)


def kline_line(seq: int, k: Kline | TextKline) -> str:
    """One staging row in COPY text format (``str`` of a ``Decimal`` is exact)."""
    return (
        f"{seq}\t{k.symbol}\t{k.open_time}\t{k.close_time}\t{k.open}\t{k.high}\t{k.low}\t"
        f"{k.close}\t{k.volume}\t{k.quote_volume}\t{k.trades}\t{k.taker_buy_base_volume}\t"
        f"{k.taker_buy_quote_volume}\n"
    )


def is_clean(text: str, rows: int) -> bool:
    """True when ``text`` is ``rows`` lines of plain ASCII fields that need no COPY escaping."""
    return (
        text.isascii()
        and text.count("\t") == rows * (COLUMNS - 1)
        and text.count("\n") == rows
        and "\\" not in text
        and "\r" not in text
    )


@dataclass
class StagedBatch:
    """Closed klines to write: their position in the consumed batch (``seqs``), their COPY lines,
    open times (Unix ms) and, for values that came from Kafka, the raw value (for the exact path
    when the database refuses a row)."""

    seqs: list[int] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    open_times: list[int] = field(default_factory=list)
    values: list[bytes | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.seqs)

    def add(self, seq: int, kline: Kline | TextKline, value: bytes | None = None) -> None:
        self.seqs.append(seq)
        self.lines.append(kline_line(seq, kline))
        self.open_times.append(kline.open_time)
        self.values.append(value)

    def payload(self) -> bytes:
        return "".join(self.lines).encode()

    def halves(self) -> tuple[StagedBatch, StagedBatch]:
        mid = len(self) // 2
        return self._slice(0, mid), self._slice(mid, len(self))

    def _slice(self, start: int, stop: int) -> StagedBatch:
        return StagedBatch(
            self.seqs[start:stop],
            self.lines[start:stop],
            self.open_times[start:stop],
            self.values[start:stop],
        )


def staging_rows(klines: Iterable[tuple[int, Kline]]) -> StagedBatch:
    """Already validated klines, numbered, as a batch for ``write_batch``."""
    batch = StagedBatch()
    for seq, kline in klines:
        batch.add(seq, kline)
    return batch


class FastPath:
    """Decides per Kafka value whether it can be staged as text with its checks left to SQL."""

    def __init__(self) -> None:
        self._symbols: set[str] = set()

    def decode(self, value: bytes, now_ms: int) -> TextKline | None:
        """The value with its decimals as text, or None when it must take the exact path."""
        try:
            kline = _text_decoder.decode(value)
        except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
            return None
        if not kline.closed or kline.open_time > now_ms + FUTURE_SKEW_MS:
            return None
        if kline.symbol not in self._symbols and not self._valid_symbol(kline.symbol):
            return None
        return kline

    def _valid_symbol(self, symbol: str) -> bool:
        try:
            check_symbol(symbol)
        except ValueError:
            return False
        if len(self._symbols) >= _SYMBOL_CACHE_LIMIT:
            self._symbols.clear()
        self._symbols.add(symbol)
        return True


def exact(value: bytes, now_ms: int) -> Kline:
    """The exact path: decode to ``Decimal`` and validate in Python. Raises msgspec's errors for
    an undecodable value and InvalidKline for an inconsistent one."""
    return validate(decode(value), now_ms)
