"""The minute job claims the checkpoints it rolls up; the inserter wakes it with NOTIFY.

Writes go through the inserter's own ``write_batch`` as its role, the minute job runs as its
role, on a database of this module (so no other test's symbols move the watermark).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import psycopg
import pytest

from cryptochart.core.kline import Kline
from cryptochart.core.settings import Settings
from cryptochart.ingest import wakeup
from cryptochart.ingest.inserter import staging_rows, write_batch
from cryptochart.ingest.minute_job import MinuteJob
from tests.conftest import migrated
from tests.faults.expected import MINUTE_MS, past_start, sim_klines

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Each test writes minutes older than the tests before it, so its own symbol's last second is the
# lowest of the active symbols': it alone moves the watermark that closes its minutes.
BASE = past_start(200)

# kline_1m as rolled up straight from kline_1s, and as the minute job stored it.
TRUTH_1M = """
SELECT symbol, date_bin('1 minute', open_time, 'epoch') AS b,
       (array_agg(open ORDER BY open_time))[1], max(high), min(low),
       (array_agg(close ORDER BY open_time DESC))[1], sum(volume), sum(quote_volume),
       sum(trades)::bigint, sum(taker_buy_base_volume), sum(taker_buy_quote_volume),
       count(*)::integer
FROM kline_1s WHERE symbol = %s AND open_time < %s GROUP BY symbol, b ORDER BY b
"""
STORED_1M = """
SELECT symbol, open_time, open, high, low, close, volume, quote_volume, trades,
       taker_buy_base_volume, taker_buy_quote_volume, seconds
FROM kline_1m WHERE symbol = %s AND open_time < %s ORDER BY open_time
"""


def at(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


@pytest.fixture(scope="module")
def claims(settings: Settings, database_factory: Callable[[str], str]) -> Settings:
    """A database of this module; the grace is long, so only the watermark (every active
    symbol's last second) closes a minute."""
    url = database_factory(f"claims_{settings.db_flavour}")
    ours = replace(
        settings.on_database(url, ""),
        aggregate_grace_seconds=86_400.0,
        db_flavour=settings.db_flavour,
    )
    migrated(ours, url)
    return ours


@pytest.fixture
def job_conn(claims: Settings) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(claims.minute_job_dsn, autocommit=True) as conn:
        yield conn


def write(settings: Settings, klines: list[Kline]) -> None:
    """As the inserter writes a batch, as its role."""
    with psycopg.connect(settings.inserter_dsn) as conn:
        write_batch(conn, staging_rows(enumerate(klines)))


def checkpoints(settings: Settings, symbol: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(settings.database_url) as conn:
        return conn.execute(
            """SELECT first_open_time, last_open_time, rows, claimed, aggregated_at IS NOT NULL
               FROM ingest_checkpoint WHERE symbol = %s ORDER BY id""",
            (symbol,),
        ).fetchall()


def assert_exact_before(settings: Settings, symbol: str, cut: datetime, minutes: int) -> None:
    """kline_1m before ``cut`` equals the roll-up of kline_1s, ``minutes`` whole minutes."""
    with psycopg.connect(settings.database_url) as conn:
        truth = conn.execute(TRUTH_1M, (symbol, cut)).fetchall()
        stored = conn.execute(STORED_1M, (symbol, cut)).fetchall()
    assert stored == truth
    assert len(stored) == minutes and all(row[-1] == 60 for row in stored)


def changed(k: Kline) -> Kline:
    """The same second sent again with another close (a correction arriving late)."""
    close = max(min(k.close + 1, k.high), k.low)
    return msgspec.structs.replace(k, close=close if close != k.close else k.low)


def test_writes_after_the_claim_open_a_new_checkpoint_and_each_cut_rolls_up_once(
    claims: Settings, job_conn: psycopg.Connection[Any]
) -> None:
    symbol = "CLAIMAUSDT"
    start = BASE - 10 * MINUTE_MS
    klines = sim_klines([symbol], 11, start, 130)  # minutes M, M+1 and 10 s of M+2
    job = MinuteJob(claims)
    write(claims, klines[:70])  # M and 10 s of M+1: M is final
    plan = job.plan(job_conn)
    assert plan.cut == at(start + MINUTE_MS) and len(plan.pending) == 1
    # Meanwhile the inserter writes on: the rest of M+1, 10 s of M+2 and a late correction of
    # M's 30th second. None of it may change the claimed checkpoint.
    late = changed(klines[30])
    write(claims, [*klines[70:], late])
    job.apply(job_conn, plan)
    rows = checkpoints(claims, symbol)
    assert rows[0] == (at(start), at(start + 69_000), 70, True, True)  # claimed, done
    # The late second and everything after it, with the remainder past the cut (rows counted
    # once, where they were written), pending in one unclaimed row.
    assert rows[1:] == [(at(start + 30_000), at(start + 129_000), 61, False, False)]

    second = job.run_once(job_conn)  # M+1 final now; M again for the late second
    assert second.cut == at(start + 2 * MINUTE_MS)
    assert [(w.start, w.end) for w in second.windows] == [(at(start), second.cut)]
    assert_exact_before(claims, symbol, second.cut, 2)
    assert job.run_once(job_conn).windows == []  # the cut rolled up once
    pending = [r for r in checkpoints(claims, symbol) if not r[4]]
    assert pending == [(second.cut, at(start + 129_000), 0, False, False)]


def test_a_pass_cut_off_after_its_claim_is_rolled_up_again_exactly(
    claims: Settings, job_conn: psycopg.Connection[Any]
) -> None:
    symbol = "CLAIMBUSDT"
    start = BASE - 20 * MINUTE_MS
    klines = sim_klines([symbol], 12, start, 130)
    job = MinuteJob(claims)
    write(claims, klines[:70])
    job.plan(job_conn)  # claimed, then the pass dies: nothing rolled up, nothing marked
    write(claims, [*klines[70:], changed(klines[5]), changed(klines[65])])
    job.plan(job_conn)  # claims both checkpoints of the symbol; dies again
    report = job.run_once(job_conn)  # claims them once more and finishes
    assert report.checkpoints == 2 and report.cut == at(start + 2 * MINUTE_MS)
    assert_exact_before(claims, symbol, report.cut, 2)  # overlapping windows summed once
    assert [r for r in checkpoints(claims, symbol) if r[3] and not r[4]] == []


def test_a_batch_writing_a_minutes_last_second_notifies_the_minute_job(claims: Settings) -> None:
    symbol = "CLAIMCUSDT"
    start = BASE - 30 * MINUTE_MS
    klines = sim_klines([symbol], 13, start, 120)
    with psycopg.connect(claims.minute_job_dsn, autocommit=True) as listener:
        wakeup.listen(listener)
        write(claims, klines[:59])  # no last second: no wake-up
        write(claims, klines[59:70])  # minute M's last second
        write(claims, klines[70:])  # M+1's
        got = [n.payload for n in listener.notifies(timeout=30, stop_after=2)]
    assert got == [str(start), str(start + MINUTE_MS)]


def test_the_running_minute_job_wakes_on_the_notification(claims: Settings) -> None:
    """With a poll interval far longer than the test, only the inserter's NOTIFY can run it."""
    symbol = "CLAIMDUSDT"
    start = BASE - 40 * MINUTE_MS
    klines = sim_klines([symbol], 14, start, 120)
    sleepy = replace(claims, aggregate_poll_seconds=3600.0)
    stop = threading.Event()
    worker = threading.Thread(target=MinuteJob(sleepy).run_forever, args=(stop,), daemon=True)
    with psycopg.connect(claims.database_url, autocommit=True) as owner:
        worker.start()
        # Its first pass ends with the upkeep's DELETE; then it waits, listening.
        for _ in range(600):
            waiting = owner.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND usename = 'cryptochart_minute_job' AND state = 'idle' "
                "AND query LIKE 'DELETE FROM ingest_checkpoint%%'"
            ).fetchone()
            if waiting == (1,):
                break
            stop.wait(0.05)
        assert waiting == (1,)
        write(claims, klines[:60])
        for _ in range(600):
            done = owner.execute(
                "SELECT seconds FROM kline_1m WHERE symbol = %s", (symbol,)
            ).fetchone()
            if done == (60,):
                break
            stop.wait(0.05)
        stop.set()
        owner.execute("SELECT pg_notify(%s, 'stop')", (wakeup.CHANNEL,))
        worker.join(timeout=30)
    assert done == (60,)
    assert not worker.is_alive()


def test_only_the_minute_job_claims_and_marks(claims: Settings) -> None:
    functions = (
        "ingest_checkpoint_claim(timestamptz)",
        "ingest_checkpoint_mark(timestamptz,bigint[])",
    )
    with psycopg.connect(claims.database_url) as owner:
        for role, allowed in (
            ("cryptochart_minute_job", True),
            ("cryptochart_app", False),
            ("cryptochart_api", False),
        ):
            for function in functions:
                row = owner.execute(
                    "SELECT has_function_privilege(%s, %s, 'EXECUTE')", (role, function)
                ).fetchone()
                assert row == (allowed,), (role, function)
