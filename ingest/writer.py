"""A thread writing one share of the inserter's batches over a database connection of its own.

The inserter splits each consumed batch by Kafka partition between its writers (a symbol's
partition is fixed, so each symbol's klines are written by one writer, in order) and waits for
all of them before committing the batch's offsets. A writer retries while the database is away
or refuses, and finds the rows the table can never take by halving the batch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import msgspec
import psycopg
from confluent_kafka import Message

from cryptochart.core.backoff import Backoff
from cryptochart.core.database import connect
from cryptochart.core.instrument import Instrument
from cryptochart.core.kline import InvalidKline
from cryptochart.ingest.staging import StagedBatch, exact, staging_rows
from cryptochart.ingest.write import (
    RETRYABLE,
    UNWRITABLE,
    Rejected,
    Row,
    write_batch,
    write_instruments,
)

log = logging.getLogger(__name__)

# After a batch that met stored seconds (a redelivery, a replay, a backfill over stored data),
# batches go straight to the upsert for this long instead of trying a plain INSERT first.
UPSERT_AFTER_CONFLICT_SECONDS = 10.0

# Sets a message aside: the message, its kind, why.
DeadLetter = Callable[[Message, str, BaseException], None]
# Adds to one of the inserter's counts.
Count = Callable[[str, int], None]


class BatchWriter:
    """One writer thread and its connection."""

    def __init__(
        self,
        dsn: str,
        name: str,
        stop: threading.Event,
        dead_letter: DeadLetter,
        count: Count,
    ) -> None:
        self._dsn = dsn
        self._stop = stop
        self._dead_letter = dead_letter
        self._add = count
        self._conn: psycopg.Connection[Row] | None = None
        self._upsert_until = 0.0  # monotonic time until which batches are upserted directly
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    def submit(
        self,
        batch: StagedBatch,
        messages: list[Message],
        instruments: Sequence[tuple[int, Instrument]] = (),
    ) -> Future[None]:
        """Write ``batch`` (and ``instruments`` before it) on the writer's thread."""
        return self._thread.submit(self._write_until_done, batch, messages, instruments)

    def close(self) -> None:
        """Wait for the batch being written (those queued behind it are dropped), then close
        the connection."""
        self._thread.shutdown(wait=True, cancel_futures=True)
        self._drop_connection()

    def _count(self, key: str, n: int = 1) -> None:
        self._add(key, n)

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
            if self._stop.is_set():
                raise SystemExit("stopped while the database was unavailable; batch not committed")
            self._count("db_retries")
            backoff.wait(self._stop)

    def _write_instruments(
        self, instruments: Sequence[tuple[int, Instrument]], messages: list[Message]
    ) -> None:
        try:
            write_instruments(self._connection(), [i for _, i in instruments])
            self._count("instruments", len(instruments))
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
                self._count("upserted_batches")
                self._upsert_until = time.monotonic() + UPSERT_AFTER_CONFLICT_SECONDS
            self._count("rows", len(batch) - len(written.rejected))
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

    def _connection(self) -> psycopg.Connection[Row]:
        if self._conn is None or self._conn.closed:
            self._conn = connect(self._dsn, timeout=5)
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None
