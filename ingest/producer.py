"""The producer: source → Kafka. Key = symbol, value = the compact exact encoding of the kline.

Idempotence is on, so a retried send never duplicates a message in the log. Rejected input goes to
the dead-letter topic with its reason in headers, so nothing is lost silently. The source's
instruments (tick and lot sizes) go once, as it starts, to the compacted instruments topic keyed by
symbol: the producer never touches the database, and a new database gets them from the topic. The
process's loop (`run_producer`) flushes what is in flight on SIGINT/SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections import Counter

from confluent_kafka import KafkaError, Message, Producer

from cryptochart.core.instrument import Instrument, encode_instrument
from cryptochart.core.kafka_clients import RECONNECT
from cryptochart.core.kline import Kline, encode
from cryptochart.core.settings import Settings
from cryptochart.ingest.sources.base import KlineSource, Rejected

log = logging.getLogger(__name__)
REPORT_EVERY = 60.0  # seconds between the producer's one-line progress reports

Headers = list[tuple[str, str | bytes | None]]


class KlineProducer:
    """Sends klines and rejections; counts deliveries and failures from Kafka's callbacks."""

    def __init__(self, settings: Settings, source_name: str) -> None:
        self._settings = settings
        self._source = source_name.encode()
        self._producer = Producer(
            {
                "bootstrap.servers": settings.kafka_bootstrap,
                **RECONNECT,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "compression.type": "lz4",
                "queue.buffering.max.messages": 500_000,
                "message.timeout.ms": 0,  # retry until delivered; idempotence keeps order
            }
        )
        self.counts: Counter[str] = Counter()

    def publish(self, kline: Kline) -> None:
        self._send(
            self._settings.klines_topic,
            kline.symbol.encode(),
            encode(kline),
            [("source", self._source)],
        )
        self.counts["closed" if kline.closed else "in_progress"] += 1

    def declare(self, instrument: Instrument) -> None:
        """Publish a symbol's tick and lot size; the topic keeps the latest per symbol."""
        self._send(
            self._settings.instruments_topic,
            instrument.symbol.encode(),
            encode_instrument(instrument),
            [("source", self._source)],
        )
        self.counts["instruments"] += 1

    def reject(self, rejected: Rejected) -> None:
        headers: Headers = [
            ("source", rejected.source.encode()),
            ("kind", rejected.kind.encode()),
            ("detail", rejected.detail.encode()[:1000]),
        ]
        self._send(self._settings.dead_letter_topic, None, rejected.raw, headers)
        self.counts["rejected"] += 1
        self.counts[f"rejected_{rejected.kind}"] += 1

    def poll(self) -> None:
        """Serve delivery callbacks; call often (the publish path calls it too)."""
        self._producer.poll(0)

    def flush(self, timeout: float = 30.0) -> int:
        """Wait for outstanding deliveries; return how many are still undelivered."""
        left = self._producer.flush(timeout)
        if left:
            log.error("%d klines still undelivered after %.0fs", left, timeout)
        return left

    def _send(self, topic: str, key: bytes | None, value: bytes, headers: Headers) -> None:
        while True:
            try:
                self._producer.produce(
                    topic, value=value, key=key, headers=headers, on_delivery=self._delivered
                )
                break
            except BufferError:  # local queue full: let deliveries drain, then try again
                self._producer.poll(0.1)
        self._producer.poll(0)

    def _delivered(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:  # instruments are counted apart: "delivered" is what carries klines
            instrument = msg.topic() == self._settings.instruments_topic
            self.counts["instruments_delivered" if instrument else "delivered"] += 1
            return
        self.counts["failed"] += 1
        log.error("delivery to %s failed: %s", msg.topic(), err)


REPORT_EVERY = 60.0  # seconds between the producer's one-line progress reports


async def pump(source: KlineSource, producer: KlineProducer) -> None:
    """Publish everything the source yields until it ends or the task is cancelled."""
    async for item in source.stream():
        if isinstance(item, Kline):
            producer.publish(item)
        else:
            producer.reject(item)


async def declare_instruments(source: KlineSource, producer: KlineProducer) -> int:
    """Publish the source's instruments; a failure is logged, never fatal (klines go on)."""
    try:
        instruments = await source.instruments()
    except Exception as exc:
        log.warning(
            "%s: tick and lot sizes unavailable (%s); precision stays unknown", source.name, exc
        )
        return 0
    for instrument in instruments:
        producer.declare(instrument)
    log.info("%s: declared tick and lot sizes of %d symbols", source.name, len(instruments))
    return len(instruments)


async def run_producer(source: KlineSource, producer: KlineProducer) -> None:
    """Pump until the source ends or a signal arrives; then flush what is in flight."""
    loop = asyncio.get_running_loop()
    declaring = asyncio.create_task(declare_instruments(source, producer))
    task = asyncio.create_task(pump(source, producer))
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    reporter = asyncio.create_task(_report(producer))
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        reporter.cancel()
        if not declaring.done():
            declaring.cancel()
        await asyncio.gather(declaring, return_exceptions=True)
        left = await asyncio.to_thread(producer.flush, 30.0)
        log.info("producer stopped: %s; %d undelivered", dict(producer.counts), left)


async def _report(producer: KlineProducer) -> None:
    while True:
        await asyncio.sleep(REPORT_EVERY)
        producer.poll()
        log.info("producer: %s", dict(producer.counts))
