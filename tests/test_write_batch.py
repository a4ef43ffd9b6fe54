"""The inserter's ``write_batch``: a plain INSERT for a batch of new seconds, the upsert once a
batch meets a stored second or holds one second twice, with the same rows and checkpoints.

Writes run as the inserter's role on a database of this module.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import msgspec
import psycopg
import pytest

from cryptochart.core.kline import Kline
from cryptochart.core.settings import Settings
from cryptochart.ingest.inserter import Written, staging_rows, write_batch
from tests.conftest import migrated
from tests.faults.expected import by_key, past_start, sim_klines
from tests.faults.stored import stored
from tests.test_checkpoint_claims import changed

SYMBOL = "WRITEAUSDT"


@pytest.fixture(scope="module")
def db(settings: Settings, database_factory: Callable[[str], str]) -> Settings:
    url = database_factory(f"write_batch_{settings.db_flavour}")
    ours = replace(settings.on_database(url, ""), db_flavour=settings.db_flavour)
    migrated(ours, url)
    return ours


def write(settings: Settings, klines: Sequence[Kline]) -> Written:
    with psycopg.connect(settings.inserter_dsn) as conn:
        return write_batch(conn, staging_rows(enumerate(klines)))


def counted(settings: Settings) -> int:
    """The rows the checkpoints say were written."""
    with psycopg.connect(settings.database_url) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(rows), 0) FROM ingest_checkpoint WHERE symbol = %s", (SYMBOL,)
        ).fetchone()
    assert row is not None
    return int(str(row[0]))


def test_new_seconds_are_inserted_and_stored_ones_upserted(db: Settings) -> None:
    klines = sim_klines([SYMBOL], 21, past_start(60), 40)
    truth = by_key(klines[:20])

    first = write(db, klines[:20])
    assert first == Written([], upserted=False)
    assert stored(db.database_url, "kline_1s", [SYMBOL]) == truth and counted(db) == 20

    # A correction, an identical redelivery and ten new seconds: the plain INSERT meets the
    # stored keys, so the whole batch is upserted; the redelivery changes nothing, is not counted.
    corrected = changed(klines[5])
    second = write(db, [corrected, klines[6], *klines[20:30]])
    assert second == Written([], upserted=True)
    truth |= by_key([corrected, *klines[20:30]])
    assert stored(db.database_url, "kline_1s", [SYMBOL]) == truth and counted(db) == 20 + 11

    # One new second twice in a batch: the later one wins.
    again = changed(klines[30])
    third = write(db, [klines[30], again])
    assert third == Written([], upserted=True)
    truth |= by_key([again])
    assert stored(db.database_url, "kline_1s", [SYMBOL]) == truth and counted(db) == 32

    # New seconds again, one of them inconsistent: inserted plainly, the bad one set aside.
    bad = msgspec.structs.replace(klines[39], high=klines[39].low / 2)
    fourth = write(db, [*klines[31:39], bad])
    assert fourth.upserted is False
    assert [(seq, kind) for seq, kind, _ in fourth.rejected] == [(8, "high_below_low")]
    truth |= by_key(klines[31:39])
    assert stored(db.database_url, "kline_1s", [SYMBOL]) == truth and counted(db) == 40
