"""Live 1s klines from Binance's WebSocket streams, with gaps repaired from REST.

The symbols are split into shards of at most 1024 streams, one connection each (see
:mod:`cryptochart.ingest.sources.binance.stream`). Everything they deliver passes a
:class:`KlineSequencer`, which emits each closed kline once and in order and, after any
connection change, fetches the closed klines a symbol missed from ``/api/v3/klines`` before
letting its live ones through again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Coroutine, Mapping, Sequence
from dataclasses import dataclass

from cryptochart.core.instrument import Instrument
from cryptochart.core.kline import Kline
from cryptochart.core.settings import Settings
from cryptochart.ingest.sources.base import Rejected
from cryptochart.ingest.sources.binance.messages import INTERVAL_MS
from cryptochart.ingest.sources.binance.rest import BinanceRest
from cryptochart.ingest.sources.binance.stream import (
    ConnectionEnded,
    ConnectionOpened,
    ConnectionPolicy,
    FeedEvent,
    ShardFeed,
)
from cryptochart.ingest.sources.kline_sequencer import Gap, KlineSequencer
from cryptochart.ingest.sources.pacing import SlidingWindowLimiter
from cryptochart.ingest.sources.rejections import Rejections

log = logging.getLogger(__name__)

INTERVAL = "1s"
_QUEUE_SIZE = 10_000  # events buffered between the connections and the consumer


@dataclass(frozen=True)
class _Repaired:
    kline: Kline


@dataclass(frozen=True)
class _RepairEnded:
    gap: Gap


@dataclass(frozen=True)
class _Failed:
    error: BaseException


_Event = FeedEvent | _Repaired | _RepairEnded | _Failed


class BinanceSource:
    """Binance spot 1s klines of ``symbols``, in progress and closed.

    ``resume_after`` maps symbols to the open_time of the last closed kline already stored; the
    gap from there to the first live kline is filled from REST. ``rest`` may be given to share a
    client (or, in tests, to control its waits); otherwise one is made for ``rest_url``.
    """

    name = "binance"

    def __init__(
        self,
        symbols: Sequence[str],
        *,
        ws_url: str,
        rest_url: str,
        policy: ConnectionPolicy | None = None,
        rest: BinanceRest | None = None,
        resume_after: Mapping[str, int] | None = None,
    ) -> None:
        if not symbols:
            raise ValueError("BinanceSource needs at least one symbol")
        self.symbols = tuple(dict.fromkeys(s.upper() for s in symbols))
        self.policy = policy or ConnectionPolicy()
        self._ws_url = ws_url
        self._rest_url = rest_url
        self._rest = rest
        self._resume_after = dict(resume_after or {})
        self.rejections = Rejections(self.name, log)
        self.sequencer: KlineSequencer | None = None  # set while streaming, for inspection

    @classmethod
    def from_settings(
        cls, settings: Settings, *, resume_after: Mapping[str, int] | None = None
    ) -> BinanceSource:
        """The source for ``settings.symbols`` at the configured Binance URLs."""
        return cls(
            settings.symbols,
            ws_url=settings.binance_ws_url,
            rest_url=settings.binance_rest_url,
            resume_after=resume_after,
        )

    @property
    def shards(self) -> list[tuple[str, ...]]:
        """The symbols of each connection, in order."""
        size = self.policy.streams_per_connection
        return [self.symbols[i : i + size] for i in range(0, len(self.symbols), size)]

    async def instruments(self) -> list[Instrument]:
        """The symbols' tick and lot sizes from Binance's exchangeInfo."""
        if self._rest is not None:
            return await self._rest.instruments(self.symbols)
        async with BinanceRest(self._rest_url, max_attempts=3) as rest:
            return await rest.instruments(self.symbols)

    async def stream(self) -> AsyncIterator[Kline | Rejected]:
        """Klines until cancelled: in-progress updates, and each closed kline once, in order."""
        queue: asyncio.Queue[_Event] = asyncio.Queue(_QUEUE_SIZE)
        rest = self._rest or BinanceRest(self._rest_url, rejections=self.rejections)
        tasks: set[asyncio.Task[None]] = set()

        def spawn(work: Coroutine[None, None, None]) -> None:
            task = asyncio.create_task(work)
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            task.add_done_callback(report_failure)

        def report_failure(task: asyncio.Task[None]) -> None:
            # A task meant to run forever died: end the stream with its error rather than stall.
            if not task.cancelled() and (error := task.exception()) is not None:
                spawn(queue.put(_Failed(error)))

        def request_repair(gap: Gap) -> None:
            spawn(_repair(rest, gap, queue))

        sequencer = KlineSequencer(INTERVAL_MS[INTERVAL], request_repair, self._resume_after)
        self.sequencer = sequencer
        limiter = SlidingWindowLimiter(self.policy.connects_per_window, self.policy.connect_window)
        for number, symbols in enumerate(self.shards):
            feed = ShardFeed(
                number,
                symbols,
                ws_url=self._ws_url,
                deliver=queue.put,
                connect_limiter=limiter,
                rejections=self.rejections,
                policy=self.policy,
                interval=INTERVAL,
            )
            spawn(feed.run())
        try:
            while True:
                for item in _route(await queue.get(), sequencer):
                    yield item
        finally:
            for task in list(tasks):
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self._rest is None:
                await rest.aclose()


def _route(event: _Event, sequencer: KlineSequencer) -> Sequence[Kline | Rejected]:
    if isinstance(event, Kline):
        return sequencer.accept(event)
    if isinstance(event, Rejected):
        return (event,)
    if isinstance(event, ConnectionOpened | ConnectionEnded):
        sequencer.suspect(event.symbols)
        return ()
    if isinstance(event, _Repaired):
        return sequencer.repaired(event.kline)
    if isinstance(event, _RepairEnded):
        return sequencer.repair_done(event.gap.symbol)
    raise event.error


async def _repair(rest: BinanceRest, gap: Gap, queue: asyncio.Queue[_Event]) -> None:
    """Fetch ``gap`` from REST into ``queue``; the symbol's live klines wait until it ends."""
    fetched = 0
    try:
        async for item in rest.klines(gap.symbol, gap.start_ms, gap.end_ms, INTERVAL):
            if isinstance(item, Kline):
                fetched += 1
                await queue.put(_Repaired(item))
            else:
                await queue.put(item)
    except Exception as exc:  # the repair is best effort: the live stream must go on
        log.error("binance: repair of %s failed after %d klines: %s", gap, fetched, exc)
    else:
        log.info(
            "binance: repaired %s [%d, %d): %d klines from REST",
            gap.symbol,
            gap.start_ms,
            gap.end_ms,
            fetched,
        )
    await queue.put(_RepairEnded(gap))
