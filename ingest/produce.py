"""Source → Kafka: the producer process's loop, with a clean flush on SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from cryptochart.kline import Kline
from ingest.producer import KlineProducer
from ingest.sources.base import KlineSource

log = logging.getLogger(__name__)
REPORT_EVERY = 60.0  # seconds between the producer's one-line progress reports


async def pump(source: KlineSource, producer: KlineProducer) -> None:
    """Publish everything the source yields until it ends or the task is cancelled."""
    async for item in source.stream():
        if isinstance(item, Kline):
            producer.publish(item)
        else:
            producer.reject(item)


async def run_producer(source: KlineSource, producer: KlineProducer) -> None:
    """Pump until the source ends or a signal arrives; then flush what is in flight."""
    loop = asyncio.get_running_loop()
    task = asyncio.create_task(pump(source, producer))
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    reporter = asyncio.create_task(_report(producer))
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        reporter.cancel()
        left = await asyncio.to_thread(producer.flush, 30.0)
        log.info("producer stopped: %s; %d undelivered", dict(producer.counts), left)


async def _report(producer: KlineProducer) -> None:
    while True:
        await asyncio.sleep(REPORT_EVERY)
        producer.poll()
        log.info("producer: %s", dict(producer.counts))
