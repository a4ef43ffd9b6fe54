"""Kafka → kline_1s → aggregates with the real inserter and minute job."""

from __future__ import annotations

import hashlib
import shutil
import signal
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import msgspec
import psycopg
import pytest

from cryptochart.core.settings import Settings
from cryptochart.core.topics import ensure_topics
from cryptochart.ingest.minute_job import MinuteJob
from tests.conftest import migrated
from tests.faults.expected import by_key, past_start, sim_klines
from tests.faults.stored import stored
from tests.pipeline import (
    DATA,
    as_candle,
    candles,
    count_rows,
    produce,
    read_dump,
    renamed,
    running_inserter,
    spawn,
    wait_for,
    wait_rows,
)

FIRST_180 = "BTCUSDT-1s-2024-03-01.part01.first180rows.csv"


@pytest.fixture(scope="module")
def history(settings: Settings, database_factory: Callable[[str], str]) -> Settings:
    """A database and topics of this module whose retention keeps 2024 data, so real dumps are
    aggregated and the minute job's upkeep keeps them."""
    url = database_factory(f"history_{settings.db_flavour}")
    ours = replace(
        settings,
        database_url=url,
        klines_topic=settings.klines_topic + ".history",
        retention_1s="100 years",
        retention_aggregates="100 years",
    )
    migrated(ours, url)
    ensure_topics(ours)
    return ours


def aggregate(settings: Settings) -> None:
    with psycopg.connect(settings.database_url) as conn:
        MinuteJob(settings).run_once(conn)


def table_digest(settings: Settings, symbol: str) -> str:
    rows = candles(settings, "kline_1s", symbol)
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def test_real_1s_klines_aggregate_to_binance_1m(history: Settings) -> None:
    symbol = "REALBTC1"
    seconds = renamed(read_dump(FIRST_180), symbol)
    produce(history, seconds)
    with running_inserter(history):
        wait_rows(history, [symbol], 180)
    assert candles(history, "kline_1s", symbol) == [as_candle(k) for k in seconds]
    aggregate(history)
    expected = [as_candle(k) for k in read_dump("BTCUSDT-1m-2024-03-01.zip")[:3]]
    assert candles(history, "kline_1m", symbol) == expected


def test_in_progress_klines_are_not_rows(settings: Settings) -> None:
    symbol = "OPENONLY1"
    closed = renamed(read_dump(FIRST_180)[:5], symbol)
    in_progress = [msgspec.structs.replace(k, closed=False) for k in closed]
    produce(settings, in_progress + closed[:2])
    with running_inserter(settings) as inserter:
        wait_rows(settings, [symbol], 2)
        wait_for(lambda: inserter.counts["in_progress_skipped"] >= 5, 30, "in-progress skips")
    assert count_rows(settings, "kline_1s", [symbol]) == 2


def test_redelivery_leaves_tables_identical(history: Settings) -> None:
    symbol = "TWICEBTC1"
    seconds = renamed(read_dump(FIRST_180)[:120], symbol)
    produce(history, seconds)
    with running_inserter(history):
        wait_rows(history, [symbol], 120)
    aggregate(history)
    before = (table_digest(history, symbol), candles(history, "kline_1m", symbol))
    # The same messages again, read by a new consumer group: a full redelivery.
    produce(history, seconds)
    again = replace(history, inserter_group=history.inserter_group + ".again")
    with running_inserter(again) as inserter:
        wait_for(lambda: inserter.counts["rows"] >= 2 * 120, 60, "the redelivered batch")
    aggregate(history)
    after = (table_digest(history, symbol), candles(history, "kline_1m", symbol))
    assert after == before
    assert count_rows(history, "kline_1s", [symbol]) == 120


def test_a_symbols_last_version_wins_across_batches_and_writers(settings: Settings) -> None:
    """Three versions of every second of 12 symbols, one after the other, read in batches of 50
    by two writer connections: each second ends as its last version, whether its versions fell
    into one batch or into two written one after the other."""
    symbols = [f"VERSIONS{i:02d}" for i in range(12)]
    first = sim_klines(symbols, 31, past_start(60), 40)
    versions = [
        [msgspec.structs.replace(k, trades=k.trades + 1_000 * n) for k in first] for n in range(3)
    ]
    produce(settings, [version[i] for i in range(len(first)) for version in versions])
    expected = by_key(versions[-1])
    small = replace(settings, insert_batch_rows=50, inserter_writers=2)
    with running_inserter(small) as inserter:
        wait_for(
            lambda: stored(settings.database_url, "kline_1s", symbols) == expected,
            60,
            "every second's last version",
        )
    assert inserter.counts["upserted_batches"] > 0
    assert inserter.counts["dead_letters"] == 0


def test_late_kline_reaggregates_its_minute(history: Settings) -> None:
    symbol = "LATEBTC1"
    seconds = renamed(read_dump(FIRST_180)[:60], symbol)
    produce(history, seconds[1:])  # second 0 is missing at first
    with running_inserter(history):
        wait_rows(history, [symbol], 59)
        aggregate(history)
        partial = candles(history, "kline_1m", symbol)
        produce(history, seconds[:1])
        wait_rows(history, [symbol], 60)
    aggregate(history)
    assert partial[0][2] == seconds[1].open  # open of the partial minute: its first second
    with psycopg.connect(history.database_url) as conn:
        row = conn.execute("SELECT seconds FROM kline_1m WHERE symbol = %s", (symbol,)).fetchone()
    assert row == (60,)
    assert candles(history, "kline_1m", symbol)[0][2] == seconds[0].open


def test_kill_9_inserter_mid_stream_loses_and_duplicates_nothing(history: Settings) -> None:
    symbols = [f"KILL{i}BTC" for i in range(4)]
    base = read_dump(FIRST_180)
    klines = [k for s in symbols for k in renamed(base, s)]
    own = replace(
        history, inserter_group=history.inserter_group + ".kill9", inserter_instance_id="kill9-a"
    )
    half = len(klines) // 2
    produce(own, klines[:half])
    proc = spawn(own, "insert")
    try:
        wait_for(lambda: count_rows(own, "kline_1s", symbols) > 0, 60, "the first batch")
        produce(own, klines[half:])
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        proc.kill()
    restarted = spawn(own, "insert")
    try:
        wait_rows(own, symbols, len(klines))
    finally:
        restarted.terminate()
        assert restarted.wait(30) == 0
    assert count_rows(own, "kline_1s", symbols) == len(klines)
    with psycopg.connect(own.database_url) as conn:
        dupes = conn.execute(
            "SELECT count(*) FROM (SELECT symbol, open_time FROM kline_1s WHERE symbol = ANY(%s) "
            "GROUP BY 1, 2 HAVING count(*) > 1) d",
            (symbols,),
        ).fetchone()
    assert dupes == (0,)


def test_real_1m_rolls_up_to_binance_15m_and_1h(history: Settings) -> None:
    """The aggregation rules above 1m, on three days of both symbols: each Binance minute goes in
    as one kline_1s row spanning the whole minute, so the minute job's kline_1m equals Binance's
    1m, and its 15m and 1h rolled up from those minutes must equal Binance's own."""
    from cryptochart.ingest.inserter import staging_rows, write_batch

    for pair in ("BTCUSDT", "ETHUSDT"):
        symbol = f"ROLL{pair}"
        minutes = [
            k
            for day in (1, 2, 3)
            for k in renamed(read_dump(f"{pair}-1m-2024-03-0{day}.zip"), symbol)
        ]
        with psycopg.connect(history.database_url) as conn:
            write_batch(conn, staging_rows(enumerate(minutes)))
            conn.commit()
        aggregate(history)
        assert candles(history, "kline_1m", symbol) == [as_candle(k) for k in minutes], pair
        for level in ("15m", "1h"):
            expected = [
                as_candle(k)
                for day in (1, 2, 3)
                for k in read_dump(f"{pair}-{level}-2024-03-0{day}.zip")
            ]
            assert candles(history, f"kline_{level}", symbol) == expected, (pair, level)


def test_kill_9_aggregator_mid_run_then_restart_aggregates_everything(history: Settings) -> None:
    from cryptochart.ingest.inserter import staging_rows, write_batch

    symbol = "KILLAGG1"
    seconds = renamed(read_dump(FIRST_180), symbol)
    expected = [as_candle(k) for k in read_dump("BTCUSDT-1m-2024-03-01.zip")[:3]]
    proc = spawn(history, "aggregate")
    try:
        with psycopg.connect(history.database_url) as conn:
            for start in range(0, 180, 20):
                write_batch(conn, staging_rows(enumerate(seconds[start : start + 20])))
                if start == 80:
                    wait_for(
                        lambda: bool(candles(history, "kline_1m", symbol)),
                        30,
                        "the running minute job to aggregate something",
                    )
                    proc.send_signal(signal.SIGKILL)
                    proc.wait(10)
    finally:
        proc.kill()
    restarted = spawn(history, "aggregate")
    try:
        wait_for(
            lambda: candles(history, "kline_1m", symbol) == expected,
            30,
            "kline_1m to equal Binance's 1m candles after the restart",
        )
    finally:
        restarted.terminate()
        assert restarted.wait(30) == 0


def test_replayed_dump_through_the_commands_equals_binance_1m(
    history: Settings, tmp_path: Path
) -> None:
    """`cryptochart produce --replay` → `insert` → `aggregate`, all as the user runs them."""
    dump = tmp_path / "RPLBTCUSDT-1s-2024-03-01.csv"
    shutil.copy(DATA / FIRST_180, dump)
    ours = replace(history, inserter_group=history.inserter_group + ".replay")
    workers = [spawn(ours, "insert"), spawn(ours, "aggregate")]
    try:
        producer = spawn(ours, "produce", "--replay", str(dump), "--speed", "0")
        assert producer.wait(60) == 0
        expected = [as_candle(k) for k in read_dump("BTCUSDT-1m-2024-03-01.zip")[:3]]
        wait_for(
            lambda: candles(ours, "kline_1m", "RPLBTCUSDT") == expected,
            60,
            "the replayed minutes to equal Binance's 1m candles",
        )
    finally:
        for proc in workers:
            proc.terminate()
            assert proc.wait(30) == 0
    seconds = renamed(read_dump(FIRST_180), "RPLBTCUSDT")
    assert candles(ours, "kline_1s", "RPLBTCUSDT") == [as_candle(k) for k in seconds]


def test_two_inserters_in_one_group_split_the_partitions(history: Settings) -> None:
    symbols = [f"SPLIT{i}USDT" for i in range(12)]
    base = read_dump(FIRST_180)[:30]
    klines = [k for s in symbols for k in renamed(base, s)]
    group = replace(
        history,
        inserter_group=history.inserter_group + ".split",
        klines_topic=history.klines_topic + ".split",  # only this test's klines on it
    )
    ensure_topics(group)
    with running_inserter(group) as first, running_inserter(group) as second:
        # Settled: each owns some, none is owned twice, all are owned (the callbacks that report
        # a rebalance's revocations and assignments run on each consumer's own thread).
        wait_for(
            lambda: (
                bool(first.partitions)
                and bool(second.partitions)
                and not first.partitions & second.partitions
                and len(first.partitions | second.partitions) == group.topic_partitions
            ),
            30,
            "both inserters to own partitions, none twice",
        )
        produce(group, klines)
        wait_rows(group, symbols, len(klines))
        wait_for(
            lambda: first.counts["rows"] + second.counts["rows"] >= len(klines),
            30,
            "both inserters' counts",
        )
    assert first.counts["rows"] > 0 and second.counts["rows"] > 0
    assert first.counts["rows"] + second.counts["rows"] == len(klines)
    assert count_rows(group, "kline_1s", symbols) == len(klines)
