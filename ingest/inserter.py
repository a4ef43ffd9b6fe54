"""Kafka → kline_1s, in batches, exactly once in effect.

A batch is what arrives from a first message until the stream goes quiet for a moment, at most
``insert_batch_seconds`` or ``insert_batch_rows``: a live second's burst is written as soon as it
is over, a backlog in full batches. It is COPYed into a staging table and upserted on (symbol,
open_time) in one transaction together with its checkpoints; only after that commit are the
Kafka offsets committed. A crash anywhere means the batch is delivered again, and the upsert
makes the second delivery harmless. The same consumer reads the compacted instruments topic and
upserts each symbol's tick and lot size into ``symbol_info`` before the batch's klines, so they
too are stored before their offsets commit.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec
import psycopg
from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from cryptochart.core.backoff import Backoff
from cryptochart.core.database import connect
from cryptochart.core.instrument import Instrument, decode_instrument, validate_instrument
from cryptochart.core.kafka_clients import RECONNECT
from cryptochart.core.kline import InvalidKline
from cryptochart.core.settings import Settings
from cryptochart.ingest import wakeup
from cryptochart.ingest.inserter_sql import (
    COPY_STAGING,
    CREATE_STAGING,
    INSERT_NEW,
    UPSERT,
    UPSERT_INSTRUMENT,
)
from cryptochart.ingest.staging import FastPath, StagedBatch, exact, is_clean, staging_rows

log = logging.getLogger(__name__)

Row = tuple[object, ...]

# The database is away or refuses for now (down, disk full, permissions, schema being changed):
# wait and try the same batch again.
RETRYABLE = (
    psycopg.OperationalError,
    psycopg.errors.InsufficientPrivilege,
    psycopg.errors.UndefinedTable,
    psycopg.errors.ReadOnlySqlTransaction,
)
# A value the table can never take: only the rows carrying it are set aside.
UNWRITABLE = (psycopg.DataError, psycopg.IntegrityError, OverflowError)
# A pause this long between messages ends a batch: a live second's burst has been taken.
QUIET_SECONDS = 0.02
# After a batch that met stored seconds (a redelivery, a replay, a backfill over stored data),
# batches go straight to the upsert for this long instead of trying a plain INSERT first.
UPSERT_AFTER_CONFLICT_SECONDS = 10.0

# A row set aside: its position in the consumed batch, the kind and the detail.
Rejected = tuple[int, str, str]

__all__ = ["KlineInserter", "Written", "staging_rows", "write_batch", "write_instruments"]


@dataclass(frozen=True)
class Written:
    """What ``write_batch`` did: the rows set aside, and whether the batch held a second already
    stored (or one twice), so that it had to be upserted."""

    rejected: list[Rejected]
    upserted: bool


def write_batch(
    conn: psycopg.Connection[Row], batch: StagedBatch, *, assume_new: bool = True
) -> Written:
    """Upsert closed klines and widen their checkpoints, in one transaction; one that writes a
    minute's last second wakes the minute job when it commits. The rows that break a
    consistency rule (checked in SQL) are not written but returned. With ``assume_new`` a plain
    INSERT is tried first, in a savepoint, and the upsert runs only when it meets a stored key."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(CREATE_STAGING)
        with cur.copy(COPY_STAGING) as copy:
            copy.write(batch.payload())
        upserted = not (assume_new and _insert_new(conn, cur))
        if upserted:
            cur.execute(UPSERT)
        rejected = [
            (int(str(seq)), str(kind), f"{kind}: {symbol} at {open_time}")
            for seq, kind, symbol, open_time in cur.fetchall()
        ]
        closed = wakeup.closed_minute(batch.open_times)
        if closed is not None:
            wakeup.notify(cur, closed)
    return Written(rejected, upserted)


def _insert_new(conn: psycopg.Connection[Row], cur: psycopg.Cursor[Row]) -> bool:
    """The staged batch by plain INSERT; False (and nothing written) when a key is taken."""
    try:
        with conn.transaction():
            cur.execute(INSERT_NEW)
    except psycopg.errors.UniqueViolation:
        return False
    return True


def write_instruments(conn: psycopg.Connection[Row], instruments: Sequence[Instrument]) -> None:
    """Upsert symbols' tick and lot sizes (the latest of a symbol wins), in one transaction."""
    latest = {i.symbol: i for i in instruments}
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            UPSERT_INSTRUMENT, [(i.symbol, i.tick_size, i.lot_size) for i in latest.values()]
        )


def is_fatal(err: KafkaError) -> bool:
    """A consumer error it cannot recover from, e.g. fenced by another inserter with the same
    instance id: librdkafka flags some as fatal and reports others with the code _FATAL."""
    return bool(err.fatal()) or err.code() == KafkaError._FATAL


class KlineInserter:
    """A consumer-group member writing closed 1s klines to the database."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.counts: Counter[str] = Counter()
        self.stop = threading.Event()
        self._conn: psycopg.Connection[Row] | None = None
        self._fast = FastPath()
        self._upsert_until = 0.0  # monotonic time until which batches are upserted directly
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
        finally:
            with contextlib.suppress(KafkaException):  # closing a fenced member fails too
                self._consumer.close()
            self._dead_letters.flush(10)
            if self._conn is not None:
                self._conn.close()

    def step(self) -> int:
        """One batch: consume, write, commit offsets. Returns the klines written."""
        messages = self._take()
        if self._fatal is not None:
            raise KafkaException(self._fatal)
        batch, instruments = self._decode(messages)
        if batch or instruments:
            self._write_until_done(batch, messages, instruments)
        if messages:
            self._commit_until_done()
        self.counts["batches"] += bool(messages)
        return len(batch)

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
        self.partitions -= self._klines_partitions(partitions)

    def _klines_partitions(self, partitions: list[TopicPartition]) -> set[int]:
        """The klines topic's among ``partitions`` (the instruments topic's are assigned too)."""
        return {p.partition for p in partitions if p.topic == self.settings.klines_topic}

    def _decode(self, messages: list[Message]) -> tuple[StagedBatch, list[tuple[int, Instrument]]]:
        batch = StagedBatch()
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
            value = msg.value() or b""
            text = fast.decode(value, now)
            if text is not None:
                batch.add(seq, text, value)
            else:
                self._decode_exactly(batch, seq, msg, now)
        if not is_clean("".join(batch.lines), len(batch)):
            batch = self._cleaned(batch, messages, now)
        return batch, instruments

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
            self.counts["in_progress_skipped"] += 1

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
        """Set aside a message that can never be stored, with why; logged once per kind."""
        self.counts["dead_letters"] += 1
        self.counts[f"dead_letter_{kind}"] += 1
        if self.counts[f"dead_letter_{kind}"] == 1:
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

    def _write_until_done(
        self,
        batch: StagedBatch,
        messages: list[Message],
        instruments: Sequence[tuple[int, Instrument]] = (),
    ) -> None:
        """Write the batch, retrying while the database is away or refuses; rows it can never
        take (bad values) are found by halving the batch and go to the dead-letter topic."""
        # A short cap: once the database is back, the backlog lands within seconds.
        backoff = Backoff(initial=0.2, maximum=2.0)
        while True:
            try:
                if instruments:
                    self._write_instruments(instruments, messages)
                if batch:
                    for seq, kind, detail in self._write_isolating(batch):
                        self._dead_letter(messages[seq], kind, ValueError(detail))
                if backoff.failures:
                    log.info("database is back; batch of %d written", len(batch))
                return
            except RETRYABLE as exc:
                if isinstance(exc, psycopg.OperationalError):
                    self._drop_connection()
                if backoff.failures == 0:
                    log.error(
                        "database unavailable or refusing, retrying with backoff: %s",
                        " ".join(str(exc).split()),
                    )
            if self.stop.is_set():
                raise SystemExit("stopped while the database was unavailable; batch not committed")
            self.counts["db_retries"] += 1
            backoff.wait(self.stop)

    def _write_instruments(
        self, instruments: Sequence[tuple[int, Instrument]], messages: list[Message]
    ) -> None:
        try:
            write_instruments(self._connection(), [i for _, i in instruments])
            self.counts["instruments"] += len(instruments)
        except UNWRITABLE:
            for seq, instrument in instruments:  # one at a time: set aside only the refused
                try:
                    write_instruments(self._connection(), [instrument])
                except UNWRITABLE as exc:
                    self._dead_letter(messages[seq], "unwritable", exc)

    def _write_isolating(self, batch: StagedBatch) -> list[Rejected]:
        """Write the batch; when the table refuses it, halve it until the refused rows are
        alone. Returns the rows to set aside (seq, kind, detail)."""
        try:
            written = write_batch(
                self._connection(), batch, assume_new=time.monotonic() >= self._upsert_until
            )
            if written.upserted:
                self.counts["upserted_batches"] += 1
                self._upsert_until = time.monotonic() + UPSERT_AFTER_CONFLICT_SECONDS
            self.counts["rows"] += len(batch) - len(written.rejected)
            return written.rejected
        except UNWRITABLE as exc:
            if len(batch) == 1:
                return self._refused(batch, exc)
            first, second = batch.halves()
            return self._write_isolating(first) + self._write_isolating(second)

    def _refused(self, batch: StagedBatch, exc: BaseException) -> list[Rejected]:
        """One row the table refused. A value staged as text goes the exact path, so it is set
        aside with the kind Python gives it, or written as Python reads it (a spelling of a
        number PostgreSQL does not read, such as ``1_000``); what is still refused is
        unwritable."""
        seq, value = batch.seqs[0], batch.values[0]
        if value is not None:
            now = time.time_ns() // 1_000_000
            try:
                kline = exact(value, now)
            except (msgspec.ValidationError, msgspec.DecodeError, RecursionError) as error:
                return [(seq, "undecodable", str(error))]
            except InvalidKline as error:
                return [(seq, error.kind, str(error))]
            return self._write_isolating(staging_rows([(seq, kline)]))
        return [(seq, "unwritable", str(exc))]

    def _commit_until_done(self) -> None:
        backoff = Backoff(initial=0.2, maximum=5.0)
        while True:
            try:
                self._consumer.commit(asynchronous=False)
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
            self.counts["commit_retries"] += 1
            if self.stop.is_set():
                return
            backoff.wait(self.stop)

    def _connection(self) -> psycopg.Connection[Row]:
        if self._conn is None or self._conn.closed:
            self._conn = connect(self.settings.inserter_dsn, timeout=5)
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None
