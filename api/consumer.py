"""The API's own reader of the klines topic: from its end, in a thread, handing batches to the
event loop through a short queue (a loop that falls behind holds the thread back, and the lag
shows in the consumer-lag metric instead of in memory).

Each partition is assigned at its high watermark read before consuming, so every message
produced after ``positioned`` is set reaches the API; no group offsets are ever committed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
import uuid
from typing import Any, NamedTuple

import msgspec
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from cryptochart.api.metrics import CONSUMER_LAG, KAFKA_MESSAGES, KAFKA_UNDECODABLE, labelled
from cryptochart.core.kafka_clients import RECONNECT
from cryptochart.core.kline import InvalidKline, Kline, decode, validate

log = logging.getLogger(__name__)

BATCH = 500
POLL_SECONDS = 0.2
PROBE_SECONDS = 5.0  # how often reachability and new partitions are checked
LAG_SECONDS = 1.0
RETRY_SECONDS = 2.0
QUEUED_BATCHES = 4
FETCH_WAIT_MS = 20
SOURCES = frozenset({"binance", "sim", "replay"})  # metric labels; any other header is "other"


class Delivery(NamedTuple):
    kline: Kline
    source: str | None  # the message's ``source`` header
    timestamp: int  # Kafka's timestamp (ms)


class KlineFeed:
    """Follows ``topic`` from its end into batches for ``loop`` (``next_batch``)."""

    def __init__(self, bootstrap: str, topic: str, loop: asyncio.AbstractEventLoop) -> None:
        self.topic = topic
        self._batches: asyncio.Queue[list[Delivery]] = asyncio.Queue()
        self._room = threading.Semaphore(QUEUED_BATCHES)  # batches queued and not taken yet
        self._loop = loop
        self._config: dict[str, Any] = {
            "bootstrap.servers": bootstrap,
            **RECONNECT,
            "group.id": f"cryptochart-api-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex}",
            "client.id": "cryptochart-api",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "latest",
            # Fetch ahead a few batches per partition, not librdkafka's 100,000 messages (up to
            # 64 MB): the API follows the live end, and a burst behind it (a backfill) would
            # otherwise sit in its memory (measured: 68 → 536 MB during an hour of 1,000 symbols).
            "queued.min.messages": 2 * BATCH,
            "queued.max.messages.kbytes": 2_048,
            # The broker may hold a fetch for up to this long even with new messages on the
            # topic; at librdkafka's 500 ms default one such fetch in a run held a whole
            # second's klines back by half a second (B2's p99 stalls, BENCHMARKS.md).
            "fetch.wait.max.ms": FETCH_WAIT_MS,
            "error_cb": self._on_error,
        }
        self.positioned = threading.Event()
        self.reachable = False
        self.error = "not started"
        self.lag = 0  # messages on the topic not consumed yet
        self._next: dict[int, int] = {}  # partition -> offset of the next message to consume
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kline-feed", daemon=True)

    @property
    def ready(self) -> bool:
        return self.positioned.is_set() and self.reachable

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=10)

    def _on_error(self, err: KafkaError) -> None:
        self.error = err.str()
        if err.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT):
            self.reachable = False
        log.warning("kafka: %s", err.str())

    def _run(self) -> None:
        consumer = Consumer(self._config)
        try:
            while not self._stopping.is_set():
                try:
                    self._assign_new_partitions(consumer)
                    break
                except KafkaException as exc:
                    self.error = str(exc)
                    log.warning("kafka: cannot position on %s: %s", self.topic, exc)
                    self._stopping.wait(RETRY_SECONDS)
            self.positioned.set()
            self._consume(consumer)
        finally:
            consumer.close()

    def _assign_new_partitions(self, consumer: Consumer) -> None:
        """Assign the topic's partitions not assigned yet, each at its current end."""
        metadata = consumer.list_topics(self.topic, timeout=PROBE_SECONDS)
        topic = metadata.topics.get(self.topic)
        if topic is None or topic.error is not None or not topic.partitions:
            raise KafkaException(f"topic {self.topic} not found")
        new = []
        for partition in sorted(set(topic.partitions) - set(self._next)):
            tp = TopicPartition(self.topic, partition)
            _, high = consumer.get_watermark_offsets(tp, timeout=PROBE_SECONDS, cached=False)
            new.append(TopicPartition(self.topic, partition, high))
        if new:
            consumer.incremental_assign(new)
            self._next.update((tp.partition, tp.offset) for tp in new)
            log.info("kafka: following %d partition(s) of %s from their end", len(new), self.topic)
        self.reachable = True
        self.error = ""

    def _consume(self, consumer: Consumer) -> None:
        next_probe = next_lag = time.monotonic()
        while not self._stopping.is_set():
            # Block only for the first message, then take what is already fetched: waiting for
            # a full batch would hold a burst's first klines back by up to POLL_SECONDS.
            first = consumer.poll(POLL_SECONDS)
            messages = [] if first is None else [first, *consumer.consume(BATCH - 1, timeout=0)]
            batch = [d for d in map(self._delivery, messages) if d is not None]
            if batch:
                self.reachable = True
                if not self._hand_over(batch):
                    return
            now = time.monotonic()
            if now >= next_lag:
                self.lag = self._lag(consumer)
                CONSUMER_LAG.set(self.lag)
                next_lag = now + LAG_SECONDS
            if now >= next_probe:
                try:
                    self._assign_new_partitions(consumer)
                except KafkaException as exc:
                    self.reachable = False
                    self.error = str(exc)
                next_probe = now + PROBE_SECONDS

    async def next_batch(self) -> list[Delivery]:
        """The next batch of deliveries, waiting for one."""
        batch = await self._batches.get()
        self._room.release()
        return batch

    def _hand_over(self, batch: list[Delivery]) -> bool:
        """Queue ``batch`` on the loop, waiting while ``QUEUED_BATCHES`` wait there already;
        False when stopping. The thread goes on to the next batch without waiting for the
        loop to take this one: decoding overlaps the fan-out."""
        while not self._room.acquire(timeout=0.5):
            if self._stopping.is_set():
                return False
        try:
            self._loop.call_soon_threadsafe(self._batches.put_nowait, batch)
        except RuntimeError:  # the loop has closed
            return False
        return True

    def _delivery(self, message: Any) -> Delivery | None:
        if message.error() is not None:
            self.error = message.error().str()
            return None
        self._next[message.partition()] = message.offset() + 1
        try:
            kline = validate(decode(message.value()))
        except (msgspec.DecodeError, msgspec.ValidationError, TypeError, InvalidKline):
            # The inserter dead-letters it with its reason; here it is only not shown.
            KAFKA_UNDECODABLE.inc()
            return None
        headers = dict(message.headers() or ())
        raw = headers.get("source")
        source = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else None
        labelled(KAFKA_MESSAGES, source if source in SOURCES else "other").inc()
        return Delivery(kline, source, message.timestamp()[1])

    def _lag(self, consumer: Consumer) -> int:
        lag = 0
        for partition, offset in self._next.items():
            tp = TopicPartition(self.topic, partition)
            _, high = consumer.get_watermark_offsets(tp, cached=True)
            if high >= 0:
                lag += max(0, high - offset)
        return lag
