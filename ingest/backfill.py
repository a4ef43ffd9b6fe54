"""`cryptochart backfill`: history into Kafka, then (optionally) wait until it is stored and
aggregated by the running inserter and minute job.

From Binance the closed 1s klines come from REST; from the simulated feed they are generated.
Either way they take the same road as live klines, so history and live data are one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from tqdm import tqdm

from cryptochart.core.kline import Kline
from cryptochart.core.settings import Settings
from cryptochart.ingest.producer import KlineProducer
from cryptochart.ingest.sources.base import Rejected
from cryptochart.ingest.sources.binance.rest import BinanceRest
from cryptochart.ingest.sources.simulated import SimulatedSource

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackfillRange:
    symbols: Sequence[str]
    start_ms: int
    end_ms: int

    @property
    def seconds(self) -> int:
        return (self.end_ms - self.start_ms) // 1000


def parse_time(raw: str, now: datetime | None = None) -> int:
    """``2024-03-01T00:00``, ``2024-03-01`` (UTC unless an offset is given), a Unix time in ms,
    or ``-1h`` / ``-30m`` / ``-90s`` before now → Unix ms on a whole second."""
    now = now or datetime.now(UTC)
    raw = raw.strip()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if raw.startswith("-") and raw[-1:] in units and raw[1:-1].isdigit():
        return (int(now.timestamp()) - int(raw[1:-1]) * units[raw[-1]]) * 1000
    if raw.isdigit():
        return int(raw) // 1000 * 1000
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError(
            f"time {raw!r} is not ISO-8601 (2024-03-01T00:00), Unix ms, or -1h/-30m/-90s"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp()) * 1000


async def history(settings: Settings, source: str, span: BackfillRange) -> AsyncIterator[object]:
    """Closed klines (and rejections) of ``span`` from Binance REST or the simulated feed."""
    if source == "sim":
        sim = SimulatedSource(
            span.symbols,
            settings.sim_seed,
            speed=None,
            start_ms=span.start_ms,
            until_ms=span.end_ms,
        )
        async for item in sim.stream():
            yield item
        return
    async with BinanceRest(settings.binance_rest_url) as rest:
        for symbol in span.symbols:
            async for item in rest.klines(symbol, span.start_ms, span.end_ms):
                yield item


async def publish(settings: Settings, source: str, span: BackfillRange) -> KlineProducer:
    producer = KlineProducer(settings, source)
    with tqdm(total=len(span.symbols) * span.seconds, unit="kline", desc="backfill") as bar:
        async for item in history(settings, source, span):
            if isinstance(item, Kline):
                producer.publish(item)
                bar.update()
            elif isinstance(item, Rejected):
                producer.reject(item)
    await asyncio.to_thread(producer.flush, 60.0)
    return producer


def wait_stored(settings: Settings, span: BackfillRange, published: int, timeout: float) -> None:
    """Wait until kline_1s holds the published klines and the minute job has aggregated them."""
    start = datetime.fromtimestamp(span.start_ms / 1000, UTC)
    end = datetime.fromtimestamp(span.end_ms / 1000, UTC)
    deadline = time.monotonic() + timeout
    with (
        psycopg.connect(settings.database_url, autocommit=True) as conn,
        tqdm(total=published, unit="row", desc="stored") as bar,
    ):
        while True:
            row = conn.execute(
                """SELECT (SELECT count(*) FROM kline_1s WHERE symbol = ANY(%(s)s)
                             AND open_time >= %(a)s AND open_time < %(b)s),
                          (SELECT count(*) FROM ingest_checkpoint WHERE symbol = ANY(%(s)s)
                             AND aggregated_at IS NULL AND first_open_time < %(b)s)""",
                {"s": list(span.symbols), "a": start, "b": end},
            ).fetchone()
            stored, pending = (int(str(v)) for v in row) if row else (0, 1)
            bar.n = stored
            bar.refresh()
            if stored >= published and pending == 0:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{stored} of {published} klines stored, {pending} checkpoints unaggregated "
                    f"after {timeout:.0f}s: are `cryptochart insert` and `cryptochart aggregate` "
                    "running?"
                )
            time.sleep(0.2)
