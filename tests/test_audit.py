"""`cryptochart audit`: seconds dropped on purpose from the fake Binance's klines are found as
exactly those ranges; `--repair` fetches them from its REST klines through Kafka, the real
inserter and minute job, and every minute is then re-aggregated exactly."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime

import psycopg

from cryptochart.core.kline import Kline, candle
from cryptochart.core.settings import Settings
from cryptochart.db.gaps import SecondRange
from cryptochart.ingest.audit import AuditRequest, audit
from cryptochart.ingest.minute_job import MinuteJob
from tests.fakes.binance import FakeBinance
from tests.pipeline import candles, produce, rolled_up, running_inserter, wait_for, wait_rows

SYMBOLS = ("AUDITA", "AUDITB")
MINUTES = 5


@contextmanager
def running_minute_job(settings: Settings) -> Iterator[None]:
    stop = threading.Event()
    thread = threading.Thread(target=MinuteJob(settings).run_forever, args=(stop,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(30)


def pending_checkpoints(settings: Settings) -> int:
    with psycopg.connect(settings.database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM ingest_checkpoint WHERE aggregated_at IS NULL "
            "AND symbol = ANY(%s)",
            (list(SYMBOLS),),
        ).fetchone()
    return int(str(row[0])) if row else 0


def run_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cryptochart.cli", *args],
        env=settings.as_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def minute_candles(settings: Settings, symbol: str) -> list[tuple[object, ...]]:
    """kline_1m of ``symbol`` as (close_time, open, high, low, close, volume, quote volume,
    trades, taker sums) with its seconds, the shape of :func:`rolled_up` plus seconds."""
    with psycopg.connect(settings.database_url) as conn:
        rows = conn.execute(
            """SELECT (extract(epoch FROM open_time) * 1000)::bigint,
                      (extract(epoch FROM close_time) * 1000)::bigint, open, high, low, close,
                      volume, quote_volume, trades, taker_buy_base_volume,
                      taker_buy_quote_volume, seconds
               FROM kline_1m WHERE symbol = %s ORDER BY open_time""",
            (symbol,),
        ).fetchall()
    return [tuple(r) for r in rows]


async def test_audit_finds_dropped_seconds_and_repair_restores_them(settings: Settings) -> None:
    async with FakeBinance() as fake:
        ours = replace(
            settings,
            binance_rest_url=fake.rest_url,
            inserter_group=settings.inserter_group + ".audit",
        )
        start = (fake.now_ms() // 60_000 - MINUTES - 2) * 60_000
        end = start + MINUTES * 60_000
        dropped = {
            "AUDITA": [SecondRange(start + 65_000, start + 70_000)],
            "AUDITB": [
                SecondRange(start, start + 3_000),  # the range's first seconds
                SecondRange(start + 179_000, start + 180_000),  # one second
                SecondRange(end - 2_000, end),  # its last seconds
            ],
        }
        truth = {s: [fake.kline(s, t) for t in range(start, end, 1000)] for s in SYMBOLS}

        def kept(symbol: str) -> list[Kline]:
            return [
                k
                for k in truth[symbol]
                if not any(r.start_ms <= k.open_time < r.end_ms for r in dropped[symbol])
            ]

        sent = produce(ours, [k for s in SYMBOLS for k in kept(s)])
        with running_inserter(ours), running_minute_job(ours):
            wait_rows(ours, SYMBOLS, sent)
            wait_for(lambda: pending_checkpoints(ours) == 0, 60, "the minute job")

            found = audit(ours, AuditRequest(SYMBOLS, start, end))
            assert {g.symbol: g.missing for g in found} == dropped
            assert {g.symbol: g.expected for g in found} == dict.fromkeys(
                SYMBOLS, SecondRange(start, end)
            )
            assert [g.stored_seconds for g in found] == [len(kept(s)) for s in SYMBOLS]
            short = {g.symbol: g.short_minutes for g in found}
            assert short["AUDITA"] == [(start + 60_000, 55)]
            assert short["AUDITB"] == [(start, 57), (start + 120_000, 59), (end - 60_000, 58)]

            period = ["--symbols", ",".join(SYMBOLS), "--from", str(start), "--to", str(end)]
            checked = await asyncio.to_thread(run_cli, ours, "audit", *period)
            assert checked.returncode == 1, checked.stderr
            day = f"{datetime.fromtimestamp(start / 1000, UTC):%Y-%m-%d}"
            assert f"AUDITA {day}: 300 expected, 295 stored, 5 missing in 1 range" in checked.stdout
            assert (
                f"AUDITB {day}: 300 expected, 294 stored, 6 missing in 3 ranges" in checked.stdout
            )

            fake.throttle(requests=1_000, status=403)  # the exchange refuses: nothing repaired
            refused = await asyncio.to_thread(run_cli, ours, "audit", *period, "--repair")
            assert refused.returncode == 1
            assert refused.stdout.count("repair: could not get") == 4
            assert refused.stdout.count("could not repair: ") == 4

            fake.throttle(requests=0)
            repaired = await asyncio.to_thread(
                run_cli, ours, "audit", *period, "--repair", "--wait", "120"
            )
            assert repaired.returncode == 0, repaired.stdout + repaired.stderr
            assert "repair: published 11 klines" in repaired.stdout
            assert "after repair: 2 symbols: 600 seconds expected, 600 stored, 0 missing" in (
                repaired.stdout
            )
            wait_for(lambda: pending_checkpoints(ours) == 0, 60, "the minute job")

    for symbol in SYMBOLS:
        stored = candles(ours, "kline_1s", symbol)
        assert [r[0] for r in stored] == [k.open_time for k in truth[symbol]]
        # open … taker_buy_quote_volume, after the two times
        assert [r[2:] for r in stored] == [candle(k)[2:] for k in truth[symbol]]
        minutes = minute_candles(ours, symbol)
        expected = [
            (t, *rolled_up(truth[symbol][i * 60 : i * 60 + 60]), 60)
            for i, t in enumerate(range(start, end, 60_000))
        ]
        assert minutes == expected
