"""One batch of klines into the database, in one transaction: staged by COPY, inserted (or
upserted), checkpoints widened, the minute job woken; symbols' tick and lot sizes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import psycopg

from cryptochart.core.instrument import Instrument
from cryptochart.ingest import wakeup
from cryptochart.ingest.inserter_sql import (
    COPY_STAGING,
    CREATE_STAGING,
    INSERT_NEW,
    UPSERT,
    UPSERT_INSTRUMENT,
)
from cryptochart.ingest.staging import StagedBatch

Row = tuple[object, ...]
# A row set aside: its position in the consumed batch, the kind and the detail.
Rejected = tuple[int, str, str]

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
