"""Replayed klines: Binance's public CSV dumps and recorded combined-stream messages.

A path may be a ``.csv`` dump, a ``.zip`` holding one, a JSON-lines recording (``.jsonl``,
``.ndjson``: one raw combined-stream message per line) or a directory of those, replayed merged
in time order. A dump's symbol (and interval) comes from its name, ``BTCUSDT-1s-2024-03-01.csv``.

Files carry no instrument metadata, so a replay declares each symbol's tick and lot size from its
records: the finest decimal place any price (or base volume) uses, trailing zeros aside. Binance
pads every number to 8 places, so the padding tells nothing; the digits do.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import heapq
import io
import logging
import time
import zipfile
from collections.abc import AsyncIterator, Collection, Generator, Iterator
from pathlib import Path

from cryptochart.core.instrument import Instrument, decimals_of, step_of
from cryptochart.core.kline import InvalidKline, Kline
from cryptochart.ingest.sources.base import Rejected
from cryptochart.ingest.sources.binance.messages import (
    INTERVAL_MS,
    ControlReply,
    ServerShutdown,
    kline_from_csv_row,
    parse_stream_message,
)
from cryptochart.ingest.sources.rejections import Rejections

log = logging.getLogger(__name__)

DUMP_SUFFIXES = (".csv", ".zip")
RECORDING_SUFFIXES = (".jsonl", ".ndjson")
_YIELD_EVERY = 2_000  # items between event-loop yields when replaying flat out

_Timed = tuple[int, int, int, Kline | Rejected]  # pace time ms, file order, line order, item
# The precision scan reads the files once before the replay: its rejections are the replay's own,
# counted and logged when streamed, so the scan keeps quiet about them.
_SCAN_LOG = logging.getLogger(f"{__name__}.scan")
_SCAN_LOG.addHandler(logging.NullHandler())
_SCAN_LOG.propagate = False


class ReplaySource:
    """The klines recorded under ``path``, paced by their timestamps.

    ``speed`` 1.0 keeps the recorded spacing (open_time for dumps, event time for recordings),
    2.0 halves it, ``None`` or 0 replays as fast as possible. ``symbol`` overrides the symbol
    taken from a dump's name; ``symbols`` (for recordings) rejects any other symbol. The stream
    ends after the last record.
    """

    name = "replay"

    def __init__(
        self,
        path: str | Path,
        *,
        speed: float | None = 1.0,
        symbol: str | None = None,
        symbols: Collection[str] | None = None,
    ) -> None:
        self.path = Path(path)
        self.files = _replay_files(self.path)
        self.speed = speed if speed and speed > 0 else None
        self.symbol = symbol
        self.symbols = frozenset(symbols) if symbols is not None else None
        self.rejections = Rejections(self.name, log)

    async def instruments(self) -> list[Instrument]:
        """Each replayed symbol's tick and lot size: one step of the finest decimal place its
        prices (lot: base volumes) use. Reads every file once, in a thread."""
        return await asyncio.to_thread(self._scan_precision)

    def _scan_precision(self) -> list[Instrument]:
        places: dict[str, tuple[int, int]] = {}
        quiet = Rejections(self.name, _SCAN_LOG)
        for file in self.files:
            items = (
                self._recording(file, quiet)
                if file.suffix in RECORDING_SUFFIXES
                else self._dump(file, quiet)
            )
            for k in items:
                if not isinstance(k, Kline):
                    continue
                price, lot = places.get(k.symbol, (0, 0))
                for value in (k.open, k.high, k.low, k.close):
                    price = max(price, decimals_of(value))
                for value in (k.volume, k.taker_buy_base_volume):
                    lot = max(lot, decimals_of(value))
                places[k.symbol] = (price, lot)
        return [
            Instrument(symbol, step_of(price), step_of(lot))
            for symbol, (price, lot) in sorted(places.items())
        ]

    def first_open_time(self) -> int | None:
        """The earliest open time (ms) among the first klines of the files, read without
        replaying them; None if no file holds a kline."""
        firsts: list[int] = []
        for order, file in enumerate(self.files):
            with contextlib.closing(self._timeline(order, file)) as timeline:
                klines = (item for _, _, _, item in timeline if isinstance(item, Kline))
                if (first := next(klines, None)) is not None:
                    firsts.append(first.open_time)
        return min(firsts, default=None)

    async def stream(self) -> AsyncIterator[Kline | Rejected]:
        timelines = [self._timeline(order, file) for order, file in enumerate(self.files)]
        first_time: int | None = None
        started = time.monotonic()
        for count, (at_ms, _file, _line, item) in enumerate(heapq.merge(*timelines), start=1):
            if self.speed is not None:
                first_time = at_ms if first_time is None else first_time
                due = started + (at_ms - first_time) / 1000 / self.speed
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
            elif count % _YIELD_EVERY == 0:
                await asyncio.sleep(0)  # let other tasks run between batches
            yield item

    def _timeline(self, order: int, file: Path) -> Generator[_Timed]:
        items = self._recording(file) if file.suffix in RECORDING_SUFFIXES else self._dump(file)
        at_ms = 0
        for line, item in enumerate(items):
            if isinstance(item, Kline):
                at_ms = item.event_time or item.open_time
            yield at_ms, order, line, item

    def _dump(self, file: Path, rejections: Rejections | None = None) -> Iterator[Kline | Rejected]:
        rejections = rejections or self.rejections
        name_parts = file.name.split("-")
        symbol = self.symbol or name_parts[0].upper()
        interval = name_parts[1] if len(name_parts) > 1 and name_parts[1] in INTERVAL_MS else None
        for number, row in enumerate(_csv_rows(file)):
            if number == 0 and row and not row[0].strip().isdigit():
                continue  # the header line of newer dumps
            try:
                yield kline_from_csv_row(symbol, row, interval)
            except InvalidKline as exc:
                yield rejections.record(exc, ",".join(row).encode())

    def _recording(
        self, file: Path, rejections: Rejections | None = None
    ) -> Iterator[Kline | Rejected]:
        rejections = rejections or self.rejections
        with file.open("rb") as lines:
            for line in lines:
                raw = line.strip()
                if not raw:
                    continue
                try:
                    message = parse_stream_message(raw, self.symbols)
                except InvalidKline as exc:
                    yield rejections.record(exc, raw)
                    continue
                if not isinstance(message, ServerShutdown | ControlReply):
                    yield message


def _replay_files(path: Path) -> list[Path]:
    suffixes = DUMP_SUFFIXES + RECORDING_SUFFIXES
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in suffixes)
    elif path.suffix in suffixes:
        files = [path]
    else:
        raise ValueError(f"cannot replay {path}: expected one of {', '.join(suffixes)} or a dir")
    if not files:
        raise ValueError(f"nothing to replay in {path}")
    return files


def _csv_rows(file: Path) -> Iterator[list[str]]:
    if file.suffix == ".zip":
        with zipfile.ZipFile(file) as archive:
            members = [n for n in archive.namelist() if n.endswith(".csv")]
            if len(members) != 1:
                raise ValueError(f"{file}: expected one CSV inside, found {members}")
            with archive.open(members[0]) as raw:
                yield from csv.reader(
                    io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")
                )
    else:
        with file.open(newline="", encoding="utf-8", errors="replace") as text:
            yield from csv.reader(text)
