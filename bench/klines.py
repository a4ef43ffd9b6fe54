"""Simulated klines for the benchmarks, and filling a topic with them through our producer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from cryptochart.core.kline import Kline
from cryptochart.core.settings import Settings
from cryptochart.core.symbols import parse_symbols
from cryptochart.ingest.producer import KlineProducer
from cryptochart.ingest.sources.simulated import SimulatedSource

SEED = 7


def symbols(count: int) -> tuple[str, ...]:
    """The product's own symbol list for a count: the real pairs, then SIM00001USDT …"""
    return parse_symbols(str(count))


def history(names: Sequence[str], seconds: int, start_ms: int | None = None) -> list[Kline]:
    """``seconds`` of closed 1s klines of every symbol, flat out (no sleeping)."""

    async def collect() -> list[Kline]:
        source = SimulatedSource(names, SEED, speed=None, start_ms=start_ms, count=seconds)
        return [k async for k in source.stream() if isinstance(k, Kline)]

    return asyncio.run(collect())


def fill_topic(settings: Settings, klines: Sequence[Kline]) -> float:
    """Publish ``klines`` with KlineProducer and wait for every delivery; return klines/s."""
    producer = KlineProducer(settings, "sim")
    started = time.perf_counter()
    for kline in klines:
        producer.publish(kline)
    if producer.flush(120) or producer.counts["failed"]:
        raise RuntimeError(f"prefill of {settings.klines_topic} failed: {dict(producer.counts)}")
    return len(klines) / (time.perf_counter() - started)
