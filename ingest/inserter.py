"""Kafka → kline_1s, in batches, exactly once in effect.

A batch is what arrives from a first message until the stream goes quiet for a moment, at most
``insert_batch_seconds`` or ``insert_batch_rows``: a live second's burst is written as soon as it
is over, a backlog in full batches. It is COPYed into a staging table and upserted on (symbol,
open_time) in one transaction together with its checkpoints; only after that commit are the
Kafka offsets committed. A crash anywhere means the batch is delivered again, and the upsert
makes the second delivery harmless. The same consumer reads the compacted instruments topic and
upserts each symbol's tick and lot size into ``symbol_info`` before the batch's klines, so they
too are stored before their offsets commit.

Batches are written by ``inserter_writers`` threads (``writer.py``), each over a connection of its
own and taking the klines of its share of the partitions, so a symbol's klines are written by one
of them, in the order consumed. While batch N is written, batch N+1 is consumed, decoded and
queued behind it; N's offsets are committed once every share of it has committed. When
partitions are taken away, the batches being written finish and commit first.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass

import msgspec
from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from cryptochart.core.backoff import Backoff
from cryptochart.core.instrument import Instrument, decode_instrument, validate_instrument
from cryptochart.core.kafka_clients import RECONNECT
from cryptochart.core.kline import InvalidKline
from cryptochart.core.settings import Settings
from cryptochart.ingest.staging import FastPath, StagedBatch, exact, is_clean, staging_rows
from cryptochart.ingest.write import Written, write_batch, write_instruments
from cryptochart.ingest.writer import BatchWriter

log = logging.getLogger(__name__)

# A pause this long between messages ends a batch: a live second's burst has been taken.
QUIET_SECONDS = 0.02

__all__ = ["KlineInserter", "Written", "staging_rows", "write_batch", "write_instruments"]


def next_offsets(messages: Sequence[Message]) -> list[TopicPartition]:
    """The offsets to commit once ``messages`` are stored: per partition, the last one's + 1."""
    last: dict[tuple[str, int], int] = {}
    for msg in messages:
        if msg.error() is None:
            key = (msg.topic() or "", msg.partition() or 0)
            last[key] = max(last.get(key, 0), (msg.offset() or 0) + 1)
    return [TopicPartition(topic, partition, offset) for (topic, partition), offset in last.items()]


@dataclass
class Handed:
    """A batch handed to the writers: their writes and the offsets to commit once all are done."""

    writes: list[Future[None]]
    offsets: list[TopicPartition]


def is_fatal(err: KafkaError) -> bool:
    """A consumer error it cannot recover from, e.g. fenced by another inserter with the same
    instance id: librdkafka flags some as fatal and reports others with the code _FATAL."""
    return bool(err.fatal()) or err.code() == KafkaError._FATAL


class KlineInserter:
    """A consumer-group member writing closed 1s klines to the database."""

    def __init__(self, settings: Settings, stop: threading.Event | None = None) -> None:
        self.settings = settings
        self.counts: Counter[str] = Counter()
        self.stop = stop or threading.Event()
        self._fast = FastPath()
        self._counts_lock = threading.Lock()
        self._writers = [
            BatchWriter(
                settings.inserter_dsn,
                f"kline-writer-{i}",
                self.stop,
                self._dead_letter,
                self._count,
            )
            for i in range(settings.inserter_writers)
        ]
        self._handed: deque[Handed] = deque()  # handed to the writers, not yet settled
        self.partitions: set[int] = set()  # the klines topic's partitions this member owns
        self._fatal: KafkaError | None = None
        self._consumer = Consumer(
            {
                "bootstrap.servers": settings.kafka_bootstrap,
                **RECONNECT,
                "group.id": settings.inserter_group,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "partition.assignment.strategy": "cooperative-sticky",
                "fetch.wait.max.ms": 50,
                # A backlog comes in fetches of up to 8 MiB a partition: at the default 1 MiB the
                # fetch round trips alone hold one consumer to about 175,000 klines/s.
                "max.partition.fetch.bytes": 8 * 1024 * 1024,
                "session.timeout.ms": int(settings.inserter_session_timeout_seconds * 1000),
                "error_cb": self._kafka_error,
                **(
                    {"group.instance.id": settings.inserter_instance_id}
                    if settings.inserter_instance_id
                    else {}
                ),
            }
        )
        self._dead_letters = Producer({"bootstrap.servers": settings.kafka_bootstrap, **RECONNECT})

    def run(self) -> None:
        """Consume and write until ``stop`` is set; then commit what was written and leave."""
        self._consumer.subscribe(
            [self.settings.klines_topic, self.settings.instruments_topic],
            on_assign=self._assigned,
            on_revoke=self._revoked,
            on_lost=self._revoked,
        )
        log.info(
            "inserter consuming %s as %s", self.settings.klines_topic, self.settings.inserter_group
        )
        try:
            while not self.stop.is_set():
                self.step()
            self._settle()
        finally:
            self.stop.set()  # a writer retrying gives up; one not started yet never starts
            for writer in self._writers:
                writer.close()
            self._handed.clear()  # not settled: their offsets stay uncommitted, they come again
            with contextlib.suppress(KafkaException):  # closing a fenced member fails too
                self._consumer.close()
            self._dead_letters.flush(10)

    def step(self) -> int:
        """Consume and decode a batch, hand it to the writers and settle the one before it
        (written, offsets committed). Returns the klines handed over."""
        messages = self._take()
        if self._fatal is not None:
            raise KafkaException(self._fatal)
        batches, instruments = self._decode(messages)
        if messages:
            writes = [
                writer.submit(batch, messages, instruments if i == 0 else ())
                for i, (writer, batch) in enumerate(zip(self._writers, batches, strict=True))
                if batch or (i == 0 and instruments)
            ]
            self._handed.append(Handed(writes, next_offsets(messages)))
        # The batch just handed over is queued behind the one before; that one is settled now,
        # so the writers always have the next batch waiting. A quiet stream settles them all.
        self._settle(keep=1 if messages else 0)
        self._count("batches", int(bool(messages)))
        return sum(len(b) for b in batches)

    def _count(self, key: str, n: int = 1) -> None:
        with self._counts_lock:
            self.counts[key] += n

    def _settle(self, keep: int = 0) -> None:
        """Wait for the batches handed to the writers, oldest first, until ``keep`` are left (an
        error of a writer is raised here), committing each one's offsets."""
        while len(self._handed) > keep:
            handed = self._handed.popleft()
            for write in handed.writes:
                write.result()
            self._commit_until_done(handed.offsets)

    def _take(self) -> list[Message]:
        """Wait up to ``insert_batch_seconds`` for a first message, then take what keeps coming
        until the batch is full, the stream goes quiet for ``QUIET_SECONDS`` (a live second's
        burst is over) or ``insert_batch_seconds`` have passed since the first."""
        rows, most = self.settings.insert_batch_rows, self.settings.insert_batch_seconds
        messages: list[Message] = self._consumer.consume(num_messages=1, timeout=most)
        deadline = time.monotonic() + most
        while messages and len(messages) < rows:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            more = self._consumer.consume(
                num_messages=rows - len(messages), timeout=min(QUIET_SECONDS, left)
            )
            if not more:
                break
            messages += more
        return messages

    def _kafka_error(self, err: KafkaError) -> None:
        if is_fatal(err):
            self._fatal = err
        else:
            log.warning("kafka: %s", err)

    def _assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.partitions |= self._klines_partitions(partitions)
        log.info("inserter owns partitions %s", sorted(self.partitions))

    def _revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._settle()  # the batches being written land and commit while their partitions are ours
        self.partitions -= self._klines_partitions(partitions)

    def _klines_partitions(self, partitions: list[TopicPartition]) -> set[int]:
        """The klines topic's among ``partitions`` (the instruments topic's are assigned too)."""
        return {p.partition for p in partitions if p.topic == self.settings.klines_topic}

    def _decode(
        self, messages: list[Message]
    ) -> tuple[list[StagedBatch], list[tuple[int, Instrument]]]:
        """The closed klines staged for each writer (by partition) and the instruments."""
        batches = [StagedBatch() for _ in self._writers]
        instruments: list[tuple[int, Instrument]] = []
        now = time.time_ns() // 1_000_000
        fast = self._fast
        for seq, msg in enumerate(messages):
            err = msg.error()
            if err is not None:
                if is_fatal(err):
                    raise KafkaException(err)
                if err.code() != KafkaError._PARTITION_EOF:
                    log.warning("kafka: %s", err)
                continue
            if msg.topic() == self.settings.instruments_topic:
                instrument = self._instrument(msg)
                if instrument is not None:
                    instruments.append((seq, instrument))
                continue
            batch = batches[(msg.partition() or 0) % len(batches)]
            value = msg.value() or b""
            text = fast.decode(value, now)
            if text is not None:
                batch.add(seq, text, value)
            else:
                self._decode_exactly(batch, seq, msg, now)
        return [
            batch
            if is_clean("".join(batch.lines), len(batch))
            else self._cleaned(batch, messages, now)
            for batch in batches
        ], instruments

    def _decode_exactly(self, batch: StagedBatch, seq: int, msg: Message, now: int) -> None:
        """The exact path: stage a valid closed kline, skip one in progress, set aside the rest."""
        try:
            kline = exact(msg.value() or b"", now)
        except (msgspec.ValidationError, msgspec.DecodeError, RecursionError) as exc:
            self._dead_letter(msg, "undecodable", exc)
            return
        except InvalidKline as exc:
            self._dead_letter(msg, exc.kind, exc)
            return
        if kline.closed:
            batch.add(seq, kline)
        else:
            self._count("in_progress_skipped")

    def _cleaned(self, batch: StagedBatch, messages: list[Message], now: int) -> StagedBatch:
        """The batch with every line that would need COPY escaping taken by the exact path."""
        cleaned = StagedBatch()
        for seq, line, open_time, value in zip(
            batch.seqs, batch.lines, batch.open_times, batch.values, strict=True
        ):
            if value is None or is_clean(line, 1):
                cleaned.seqs.append(seq)
                cleaned.lines.append(line)
                cleaned.open_times.append(open_time)
                cleaned.values.append(value)
            else:
                self._decode_exactly(cleaned, seq, messages[seq], now)
        return cleaned

    def _instrument(self, msg: Message) -> Instrument | None:
        try:
            return validate_instrument(decode_instrument(msg.value() or b""))
        except (msgspec.ValidationError, msgspec.DecodeError, RecursionError) as exc:
            self._dead_letter(msg, "undecodable", exc)
        except InvalidKline as exc:
            self._dead_letter(msg, exc.kind, exc)
        return None

    def _dead_letter(self, msg: Message, kind: str, exc: BaseException) -> None:
        """Set aside a message that can never be stored, with why; logged once per kind. Both
        the decoding and the writing thread set messages aside."""
        with self._counts_lock:
            self.counts["dead_letters"] += 1
            self.counts[f"dead_letter_{kind}"] += 1
            first = self.counts[f"dead_letter_{kind}"] == 1
        if first:
            log.error(
                "%s message in %s sent to %s: %s",
                kind,
                msg.topic(),
                self.settings.dead_letter_topic,
                " ".join(str(exc).split())[:300],
            )
        self._dead_letters.produce(
            self.settings.dead_letter_topic,
            value=msg.value(),
            key=msg.key(),
            headers=[("kind", kind.encode()), ("detail", str(exc).encode()[:1000])],
        )
        self._dead_letters.poll(0)

    def _commit_until_done(self, offsets: list[TopicPartition]) -> None:
        """Commit ``offsets`` of the partitions still ours (another owner's progress is not
        overwritten; what it gets again, the upsert absorbs)."""
        owned = {(tp.topic, tp.partition) for tp in self._consumer.assignment()}
        offsets = [tp for tp in offsets if (tp.topic, tp.partition) in owned]
        if not offsets:
            return
        backoff = Backoff(initial=0.2, maximum=5.0)
        while True:
            try:
                self._consumer.commit(offsets=offsets, asynchronous=False)
                return
            except KafkaException as exc:
                if exc.args and is_fatal(exc.args[0]):
                    raise
                code = exc.args[0].code() if exc.args else None
                if code in (
                    KafkaError._NO_OFFSET,
                    KafkaError.UNKNOWN_MEMBER_ID,
                    KafkaError.REBALANCE_IN_PROGRESS,
                    KafkaError.ILLEGAL_GENERATION,
                ):
                    # Partitions moved: their new owner gets the batch again; the upsert absorbs it.
                    return
                log.warning("offset commit failed, retrying: %s", exc)
            self._count("commit_retries")
            if self.stop.is_set():
                return
            backoff.wait(self.stop)
