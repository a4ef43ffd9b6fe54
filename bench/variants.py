"""``python -m bench.variants insert|history|minute-job|ws-deflate|realtime [--flavour F]``: the
hot paths the profiles point at, timed in parts and next to candidate changes, in this process on
a scratch database of the chosen schema flavour (default TimescaleDB). Nothing here changes the
product; the figures size the proposals in BENCHMARKS.md.

- insert: one inserter batch (5,000 klines of 1,000 symbols) phase by phase, as shipped
  (decimals kept as text, checked in SQL) next to the former path (``Decimal``, binary COPY),
  each also with asynchronous commit, and shipped write_batch with larger batches.
- history: one 720-candle page of /api/v1/klines as api.history builds it, and the same rows
  selected as epoch milliseconds and numeric text, or as JSON built by PostgreSQL.
- minute-job: one run of MinuteJob over two minutes of 1,000 symbols, phase by phase (the roll-up
  of each level: kline_rollup() on plain PostgreSQL, refresh_continuous_aggregate on TimescaleDB).
- ws-deflate: B2 and B6 again with clients that do not offer permessage-deflate.
- realtime (TimescaleDB): history pages with the continuous aggregates materialised only (the
  API folds the newest bucket from the finer levels, as shipped) against real-time aggregation
  (``timescaledb.materialized_only = false``), with and without the API's folding; the pages
  compared candle by candle, each timed in this process and under wrk against ``cryptochart
  serve``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import msgspec
import psycopg

from bench import klines as sim
from bench.realtime import study as study_realtime
from bench.scratch import scratch_settings
from cryptochart.core.database import Conn
from cryptochart.core.kline import decode, encode
from cryptochart.core.settings import Settings
from cryptochart.db.migrate import FLAVOURS, Flavour
from cryptochart.ingest.inserter import staging_rows, write_batch
from cryptochart.ingest.inserter_sql import COPY_STAGING, CREATE_STAGING, UPSERT
from cryptochart.ingest.staging import FastPath, StagedBatch

BATCH = 5_000


class Timer:
    """Wall and this process's CPU seconds per named phase, summed over repeats."""

    def __init__(self) -> None:
        self.wall: dict[str, list[float]] = {}
        self.cpu: dict[str, list[float]] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        w, c = time.perf_counter(), time.process_time()
        yield
        self.wall.setdefault(name, []).append(time.perf_counter() - w)
        self.cpu.setdefault(name, []).append(time.process_time() - c)

    def lines(self, per: int, unit: str) -> list[str]:
        """Median per phase, in millionths of a second divided by ``per``."""
        out = []
        for name, walls in self.wall.items():
            wall = statistics.median(walls) * 1e6 / per
            cpu = statistics.median(self.cpu[name]) * 1e6 / per
            out.append(f"  {name:<52} {wall:9.2f} {unit} wall, {cpu:9.2f} in Python")
        return out


# The staging columns' types for a binary COPY of Decimal rows (the inserter before 2026-12-03).
_BINARY_TYPES = ("int8", "text", "int8", "int8", *["numeric"] * 6, "int8", "numeric", "numeric")

Copier = Callable[[psycopg.Copy], None]


def _batch_decimal(conn: Conn, values: Sequence[bytes], timer: Timer, prefix: str) -> None:
    with timer(f"{prefix}decode (msgspec → Kline, Decimal)"):
        klines = [decode(v) for v in values]
    with timer(f"{prefix}rows"):
        rows = [(i, *msgspec.structs.astuple(k)[:12]) for i, k in enumerate(klines)]

    def copy_rows(copy: psycopg.Copy) -> None:
        copy.set_types(_BINARY_TYPES)
        for row in rows:
            copy.write_row(row)

    _write(conn, copy_rows, " (FORMAT BINARY)", timer, prefix)


def _batch_text(conn: Conn, values: Sequence[bytes], timer: Timer, prefix: str) -> None:
    fast = FastPath()
    now = time.time_ns() // 1_000_000
    with timer(f"{prefix}decode (FastPath: decimals as str)"):
        texts = [fast.decode(v, now) for v in values]
    with timer(f"{prefix}rows (COPY text lines)"):
        batch = StagedBatch()
        for i, (k, v) in enumerate(zip(texts, values, strict=True)):
            assert k is not None
            batch.add(i, k, v)
        payload = batch.payload()
    _write(conn, lambda copy: copy.write(payload), "", timer, prefix)


def _write(conn: Conn, copier: Copier, fmt: str, timer: Timer, prefix: str) -> None:
    # write_batch's statements, with the commit timed on its own
    with conn.cursor() as cur:
        cur.execute(CREATE_STAGING)
        with (
            timer(f"{prefix}COPY into staging ({'binary' if fmt else 'text'})"),
            cur.copy(COPY_STAGING + fmt) as copy,
        ):
            copier(copy)
        with timer(f"{prefix}UPSERT + checks + checkpoints"):
            cur.execute(UPSERT)
            cur.fetchall()
    with timer(f"{prefix}COMMIT"):
        conn.commit()


def _fresh(conn: Conn) -> None:
    conn.execute("TRUNCATE kline_1s, ingest_checkpoint")
    conn.commit()


def study_insert(base: Settings, flavour: Flavour) -> None:
    names = sim.symbols(1_000)
    klines = sim.history(names, 100)  # 100,000 klines: 20 batches
    values = [encode(k) for k in klines]
    batches = [values[i : i + BATCH] for i in range(0, len(values), BATCH)]
    runs: list[tuple[str, Callable[[Conn, Sequence[bytes], Timer, str], None]]] = [
        ("Decimal, binary COPY (before)", _batch_decimal),
        ("shipped: decimals as text", _batch_text),
    ]
    with (
        scratch_settings(base, flavour, "variants_insert", symbols=names) as settings,
        psycopg.connect(settings.database_url) as conn,
    ):
        for label, batch_fn in runs:
            for async_commit in (False, True):
                _fresh(conn)
                if async_commit:
                    conn.execute("SET synchronous_commit = off")
                timer = Timer()
                started = time.perf_counter()
                for batch in batches:
                    batch_fn(conn, batch, timer, "")
                elapsed = time.perf_counter() - started
                conn.execute("SET synchronous_commit = on")
                conn.commit()
                mode = ", synchronous_commit off" if async_commit else ""
                print(f"{label}{mode}: {len(values) / elapsed:,.0f} rows/s, per row:")
                print("\n".join(timer.lines(BATCH, "µs/row")))
        _fresh(conn)
        size = 20_000
        started = time.perf_counter()
        for i in range(0, len(values), size):
            write_batch(conn, staging_rows(enumerate(decode(v) for v in values[i : i + size])))
        elapsed = time.perf_counter() - started
        print(f"shipped write_batch, batches of {size:,}: {len(values) / elapsed:,.0f} rows/s")


HISTORY_SQL = """
SELECT (extract(epoch FROM open_time) * 1000)::bigint, open::text, high::text, low::text,
       close::text, volume::text, (extract(epoch FROM close_time) * 1000)::bigint,
       quote_volume::text, trades, taker_buy_base_volume::text, taker_buy_quote_volume::text, '0'
FROM kline_1m WHERE symbol = %s AND open_time < %s ORDER BY open_time DESC LIMIT %s
"""
HISTORY_JSON_SQL = """
SELECT coalesce(json_agg(json_build_array(o, op, hi, lo, cl, vo, c, qv, tr, tb, tq, '0')
                         ORDER BY o), '[]')::text
FROM (SELECT (extract(epoch FROM open_time) * 1000)::bigint AS o, open::text AS op,
             high::text AS hi, low::text AS lo, close::text AS cl, volume::text AS vo,
             (extract(epoch FROM close_time) * 1000)::bigint AS c, quote_volume::text AS qv,
             trades AS tr, taker_buy_base_volume::text AS tb, taker_buy_quote_volume::text AS tq
      FROM kline_1m WHERE symbol = %s AND open_time < %s ORDER BY open_time DESC LIMIT %s) page
"""


def study_history(base: Settings, flavour: Flavour) -> None:
    from datetime import UTC, datetime

    from psycopg import AsyncConnection, IsolationLevel

    from bench.history_api import PAGE, fill_day
    from cryptochart.api import history
    from cryptochart.api.intervals import INTERVALS

    names = sim.symbols(1)
    encoder = msgspec.json.Encoder()
    with scratch_settings(base, flavour, "variants_history", symbols=names) as settings:
        fill_day(settings, names)

        async def measure() -> None:
            conn = await AsyncConnection.connect(settings.database_url)
            await conn.set_isolation_level(IsolationLevel.REPEATABLE_READ)
            await conn.set_read_only(True)
            end = datetime.now(UTC)
            timer = Timer()
            for _ in range(200):
                with timer("shipped: history.klines + JSON"):
                    candles = await history.klines(
                        conn, INTERVALS["1m"], names[0], None, None, PAGE
                    )
                    body = encoder.encode([c[:12] for c in candles])
                    await conn.commit()
                with timer("epoch ms and numeric::text in SQL + JSON"):
                    cur = await conn.execute(HISTORY_SQL, (names[0], end, PAGE))
                    text_rows = await cur.fetchall()
                    body2 = encoder.encode(text_rows[::-1])
                    await conn.commit()
                with timer("JSON built by PostgreSQL, passed through"):
                    cur = await conn.execute(HISTORY_JSON_SQL, (names[0], end, PAGE))
                    row = await cur.fetchone()
                    body3 = str(row[0] if row else "[]").encode()
                    await conn.commit()
            await conn.close()
            print(
                f"one page of {PAGE} candles ({len(body):,} / {len(body2):,} / "
                f"{len(body3):,} bytes):"
            )
            print("\n".join(timer.lines(1, "µs/page")))

        asyncio.run(measure())


def study_minute_job(base: Settings, flavour: Flavour) -> None:
    from cryptochart.ingest.minute_job import MinuteJob, levels

    names = sim.symbols(1_000)
    minute = (int(time.time()) // 60 - 3) * 60_000
    klines = sim.history(names, 120, start_ms=minute)
    with (
        scratch_settings(base, flavour, "variants_minute", symbols=names) as settings,
        psycopg.connect(settings.database_url) as conn,
    ):
        for i in range(0, len(klines), BATCH):
            write_batch(conn, staging_rows(enumerate(klines[i : i + BATCH])))
        conn.autocommit = True
        job = MinuteJob(settings)
        timer = Timer()
        with timer("plan (watermark, pending checkpoints)"):
            plan = job.plan(conn)
        if flavour == "timescaledb":  # refresh_continuous_aggregate cannot run in a transaction
            with timer(f"refresh every level ({len(plan.windows)} windows)"):
                job.refresh(conn, plan.windows)
        with conn.transaction():
            if flavour == "postgres":
                with timer(f"kline_rollup every level ({len(plan.windows)} windows)"):
                    job.rollup(conn, plan.windows, levels(conn))
            with timer(f"mark ({len(plan.pending)} checkpoints, one statement)"):
                job.mark(conn, plan)
            timer_commit = time.perf_counter()
        print(f"COMMIT {1000 * (time.perf_counter() - timer_commit):.1f} ms")
        print(f"one minute-job run over {len(plan.windows)} windows (2 minutes x 1,000 symbols):")
        print("\n".join(timer.lines(1_000, "ms")))


def study_ws_deflate(base: Settings, flavour: Flavour) -> None:
    """B2 and B6 with clients that do not offer permessage-deflate (the API then sends plain)."""
    import tempfile
    from pathlib import Path

    from bench import live_api, report
    from bench.results import RunOptions

    with tempfile.TemporaryDirectory(prefix="cryptochart-bench-") as tmp:
        b2, b6 = live_api.run_both(base, RunOptions(False, Path(tmp), flavour), deflate=False)
    print(report.table([{flavour: b2}, {flavour: b6}]))


STUDIES: dict[str, Callable[[Settings, Flavour], None]] = {
    "insert": study_insert,
    "history": study_history,
    "minute-job": study_minute_job,
    "ws-deflate": study_ws_deflate,
    "realtime": study_realtime,
}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.variants", description=__doc__)
    parser.add_argument("study", choices=list(STUDIES))
    parser.add_argument("--flavour", choices=FLAVOURS, default="timescaledb")
    args = parser.parse_args()
    STUDIES[args.study](Settings.from_env(), args.flavour)
    return 0


if __name__ == "__main__":
    sys.exit(main())
