"""Real-time aggregation against the API's own folding (``python -m bench.variants realtime``).

As shipped, TimescaleDB's continuous aggregates are ``materialized_only = true`` and the API
completes each level's newest bucket itself: it reads the materialised rows up to the newest one
and folds the rest from the finer levels, down to ``kline_1s`` (api/history.py). TimescaleDB can
do the completing instead: with ``materialized_only = false`` a query of ``kline_1m`` also
aggregates, at query time, the finer level's rows above the aggregate's watermark.

On a scratch TimescaleDB database with a day of 1s klines for four symbols, rolled up by the
minute job as shipped up to a cut 27 minutes past an hour (so the newest bucket of every coarser
level is partial), and 40 seconds more in ``kline_1s`` only (the minute going on), three ways to
serve a page:

- materialised only + the API's folding (shipped);
- real-time aggregates + the API's folding (the setting flipped, the API unchanged);
- real-time aggregates read with one range query, no folding (what the API could become).

and a fourth: real-time aggregates on a second database where every level was refreshed only up to
its last whole bucket before the cut (what the minute job would have to do for real-time
aggregation to complete the coarser levels' newest bucket), read with one query.

Each page is compared candle by candle with the shipped one and timed in this process (the API's
own read-only role and per-request transaction), and B4's requests are timed with wrk against
``cryptochart serve`` with the setting off and on.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
import psycopg
from psycopg import AsyncConnection, IsolationLevel, sql

from bench import klines as sim
from bench.history_api import DAY_S, PAGE, RATE_LIMIT_PER_MINUTE, WrkResult, wrk
from bench.live_api import wait_ready
from bench.processes import spawn
from bench.results import ms, percentile
from bench.scratch import scratch_settings
from cryptochart.api import history
from cryptochart.api.history import PageRow
from cryptochart.api.intervals import INTERVALS, Interval, floor_to
from cryptochart.core.kline import Kline
from cryptochart.core.settings import Settings
from cryptochart.db.migrate import Flavour
from cryptochart.devservices.ports import free_port
from cryptochart.ingest.inserter import staging_rows, write_batch
from cryptochart.ingest.minute_job import MinuteJob, levels

AsyncConn = AsyncConnection[tuple[Any, ...]]
Reader = Callable[[AsyncConn, Interval, str, int | None, int], Awaitable[list[PageRow]]]
LEVELS = ("kline_1m", "kline_5m", "kline_15m", "kline_1h", "kline_1d")
TAIL_S = 40  # seconds of the minute going on, in kline_1s only
REPEATS = 240  # per request and variant, over ROUNDS rounds
ROUNDS = 3
EXPLAINS = 30
WRK_SECONDS = 8.0
ONE_MINUTE = INTERVALS["1m"]


@dataclass(frozen=True)
class Request:
    label: str
    interval: Interval
    symbol: str
    end: int | None  # endTime, ms; None: the newest page
    limit: int = PAGE


async def folded(
    conn: AsyncConn, interval: Interval, symbol: str, end: int | None, limit: int
) -> list[PageRow]:
    """The shipped API: materialised rows, the newest bucket folded from the finer levels."""
    return await history.klines(conn, interval, symbol, None, end, limit)


async def one_query(
    conn: AsyncConn, interval: Interval, symbol: str, end: int | None, limit: int
) -> list[PageRow]:
    """One descending range read of the (real-time) aggregate, no folding."""
    hi = history.END_OF_TIME if end is None else floor_to(end, interval) + interval.ms
    newest_first = await history.page_rows(
        conn, interval, symbol, 0, hi, descending=True, limit=limit
    )
    return newest_first[::-1]


def set_realtime(url: str, on: bool) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for relation in LEVELS:
            conn.execute(
                sql.SQL(
                    "ALTER MATERIALIZED VIEW {} SET (timescaledb.materialized_only = {})"
                ).format(sql.Identifier(relation), sql.SQL("false" if on else "true"))
            )


def watermarks(url: str) -> dict[str, datetime]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            """SELECT user_view_name, _timescaledb_functions.to_timestamp(
                          _timescaledb_functions.cagg_watermark(mat_hypertable_id))
               FROM _timescaledb_catalog.continuous_agg ORDER BY mat_hypertable_id"""
        ).fetchall()
    return {str(name): value for name, value in rows if isinstance(value, datetime)}


async def _connect(settings: Settings) -> AsyncConn:
    """A connection like the API pool's: its role, repeatable read, read only."""
    conn = await AsyncConnection.connect(settings.api_dsn)
    await conn.set_isolation_level(IsolationLevel.REPEATABLE_READ)
    await conn.set_read_only(True)
    return conn


Variant = tuple[str, Settings, Reader]  # name, database, how a page is read


async def _pages(
    settings: Settings, reader: Reader, requests: list[Request]
) -> list[list[PageRow]]:
    conn = await _connect(settings)
    try:
        out = []
        for r in requests:
            out.append(await reader(conn, r.interval, r.symbol, r.end, r.limit))
            await conn.commit()
        return out
    finally:
        await conn.close()


async def _time(
    variants: Sequence[Variant], requests: list[Request], walls: dict[tuple[str, str], list[float]]
) -> None:
    """Wall ms per request (read, rows as JSON, commit) into ``walls``, variants interleaved."""
    encode = msgspec.json.Encoder().encode
    conns = [await _connect(settings) for _, settings, _ in variants]
    try:
        for _ in range(REPEATS // ROUNDS):
            for r in requests:
                for (name, _, reader), conn in zip(variants, conns, strict=True):
                    started = time.perf_counter()
                    page = await reader(conn, r.interval, r.symbol, r.end, r.limit)
                    encode([c[:12] for c in page])
                    await conn.commit()
                    walls.setdefault((name, r.label), []).append(
                        1000 * (time.perf_counter() - started)
                    )
    finally:
        for conn in conns:
            await conn.close()


def _explain(url: str, request: Request) -> tuple[float, float]:
    """Median planning and execution ms of the page's descending range query, from EXPLAIN."""
    query = sql.SQL("EXPLAIN (ANALYZE, FORMAT JSON) ") + history.range_query(
        request.interval, descending=True
    )
    planning, execution = [], []
    end = history.to_datetime(history.END_OF_TIME)
    params = (request.symbol, history.to_datetime(0), end, request.limit)
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(EXPLAINS):
            row = conn.execute(query, params).fetchone()
            plan = row[0][0] if row else {}
            planning.append(float(plan["Planning Time"]))
            execution.append(float(plan["Execution Time"]))
    return statistics.median(planning), statistics.median(execution)


def _differences(shipped: list[PageRow], other: list[PageRow]) -> str:
    if shipped == other:
        return "same candles"
    by_time = {c[0]: c for c in other}
    differ = [c for c in shipped if by_time.get(c[0]) != c]
    missing = len({c[0] for c in shipped} ^ set(by_time))
    newest, theirs = shipped[-1], by_time.get(shipped[-1][0])
    seconds = "absent" if theirs is None else f"{theirs[12]} s, close {theirs[4]}"
    return (
        f"{len(differ)} of {len(shipped)} candles differ ({missing} open times only on one side); "
        f"newest: shipped {newest[12]} s, close {newest[4]} / this {seconds}"
    )


def _wrk_api(settings: Settings, paths: list[str], logs: Path, name: str) -> WrkResult:
    api = spawn(
        settings,
        name,
        ["serve", "--log-level", "warning"],
        logs,
        CRYPTOCHART_API_RATE_LIMIT_PER_MINUTE=str(RATE_LIMIT_PER_MINUTE),
    )
    try:
        wait_ready(settings, api)
        return wrk(f"http://127.0.0.1:{settings.api_port}", paths, WRK_SECONDS, logs, name)
    finally:
        api.stop()


def _write(settings: Settings, klines: list[Kline]) -> None:
    with psycopg.connect(settings.database_url) as conn:
        for i in range(0, len(klines), 5_000):
            write_batch(conn, staging_rows(enumerate(klines[i : i + 5_000])))


def _refresh_whole_buckets(settings: Settings, cut: datetime) -> None:
    """Each level refreshed up to its last whole bucket before ``cut`` (the minute job's cut):
    the newest, partial bucket of every level is left to real-time aggregation."""
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        for level in levels(conn):
            epoch = history.EPOCH
            end = epoch + (cut - epoch) // level.bucket * level.bucket
            conn.execute(
                "CALL refresh_continuous_aggregate(%s, NULL, %s::timestamptz)",
                (level.relation, end),
            )


def _p(walls: list[float]) -> str:
    return f"{ms(percentile(walls, 50))} / {ms(percentile(walls, 99))}"


def study(base: Settings, flavour: Flavour) -> None:
    if flavour != "timescaledb":
        raise SystemExit("realtime: real-time aggregation is TimescaleDB's (--flavour timescaledb)")
    names = sim.symbols(4)
    # The minute job's cut 27 minutes past an hour, so the newest bucket of every level above 1m
    # is partial, and TAIL_S seconds after it that no roll-up has seen yet (the minute going on).
    cut_ms = ((int(time.time()) // 3600) * 3600 - 27 * 60) * 1000
    klines = sim.history(names, DAY_S + TAIL_S, start_ms=cut_ms - DAY_S * 1000)
    rolled = [k for k in klines if k.open_time < cut_ms]
    tail = [k for k in klines if k.open_time >= cut_ms]
    with (
        scratch_settings(base, flavour, "realtime", symbols=names) as shipped_db,
        scratch_settings(base, flavour, "realtime_whole", symbols=names) as whole_db,
        tempfile.TemporaryDirectory(prefix="cryptochart-bench-") as tmp,
    ):
        shipped_db = replace(shipped_db, api_port=free_port())
        _write(shipped_db, rolled)
        with MinuteJob(shipped_db) as job, psycopg.connect(shipped_db.database_url) as conn:
            job.run_once(conn)
        _write(shipped_db, tail)
        marks = watermarks(shipped_db.database_url)
        _write(whole_db, klines)
        _refresh_whole_buckets(whole_db, history.to_datetime(cut_ms))
        set_realtime(whole_db.database_url, True)
        print(
            f"{len(klines):,} 1s klines of {len(names)} symbols; the minute job rolled up those "
            f"before {history.to_datetime(cut_ms)}, then {TAIL_S} s more were written"
        )
        print(
            "watermarks (materialised up to) after the minute job as shipped / after refreshing "
            "whole buckets only:"
        )
        for name, value in watermarks(whole_db.database_url).items():
            print(f"  {name:<10} {marks[name]} / {value}")

        symbol = names[0]
        newest_1m = asyncio.run(_pages(shipped_db, folded, [Request("", ONE_MINUTE, symbol, None)]))
        requests = [
            Request("1m, newest 720", ONE_MINUTE, symbol, None),
            Request("1m, the 720 before", ONE_MINUTE, symbol, newest_1m[0][0][0] - 1),
            *(
                Request(f"{i}, newest", INTERVALS[i], symbol, None)
                for i in ("5m", "15m", "1h", "1d")
            ),
        ]
        paths = []
        for s in names:
            page = f"/api/v1/klines?symbol={s}&interval=1m&limit={PAGE}"
            first = asyncio.run(_pages(shipped_db, folded, [Request("", ONE_MINUTE, s, None)]))
            paths += [page, f"{page}&endTime={first[0][0][0] - 1}"]
        logs = Path(tmp)

        whole: Variant = ("real-time, whole buckets refreshed, one query", whole_db, one_query)
        walls: dict[tuple[str, str], list[float]] = {}
        served: dict[str, list[WrkResult]] = {}
        explained: dict[str, tuple[float, float]] = {}
        pages: dict[str, list[list[PageRow]]] = {}
        for _ in range(ROUNDS):  # the setting is DDL: off and on alternate in blocks
            set_realtime(shipped_db.database_url, False)
            off: list[Variant] = [
                ("materialised only + folding (shipped)", shipped_db, folded),
                whole,
            ]
            on: list[Variant] = [
                ("real-time + folding", shipped_db, folded),
                ("real-time, one query", shipped_db, one_query),
            ]
            for name, settings, reader in off:
                pages[name] = asyncio.run(_pages(settings, reader, requests))
            asyncio.run(_time(off, requests, walls))
            explained["materialised only"] = _explain(shipped_db.database_url, requests[0])
            explained["real-time, whole buckets"] = _explain(whole_db.database_url, requests[0])
            served.setdefault("materialised only", []).append(
                _wrk_api(shipped_db, paths, logs, "realtime-off")
            )
            set_realtime(shipped_db.database_url, True)
            for name, settings, reader in on:
                pages[name] = asyncio.run(_pages(settings, reader, requests))
            asyncio.run(_time(on, requests, walls))
            explained["real-time"] = _explain(shipped_db.database_url, requests[0])
            served.setdefault("real-time", []).append(
                _wrk_api(shipped_db, paths, logs, "realtime-on")
            )

    reference = pages.pop("materialised only + folding (shipped)")
    print("\npages compared candle by candle with the shipped ones (materialised only + folding):")
    for i, r in enumerate(requests):
        for name, got in pages.items():
            print(f"  {r.label}, {name}: {_differences(reference[i], got[i])}")
    print(f"\nper request, wall ms (read, rows as JSON, commit), {REPEATS} each, p50 / p99:")
    variants = list(dict.fromkeys(name for name, _ in walls))
    for r in requests:
        print(f"  {r.label}:")
        for name in variants:
            print(f"    {name:<48} {_p(walls[(name, r.label)])}")
    print(f"\nEXPLAIN ANALYZE of the 1m newest-page range query, median of {EXPLAINS}:")
    for name, (planning, execution) in explained.items():
        print(f"  {name:<26} planning {planning:.2f} ms, execution {execution:.2f} ms")
    print(
        f"\nwrk, B4's {len(paths)} paths, {WRK_SECONDS:.0f} s a run, cryptochart serve as shipped:"
    )
    for name, runs in served.items():
        print(
            f"  {name:<18} "
            + "; ".join(
                f"p50 {ms(w.p50_ms)}, p99 {ms(w.p99_ms)}, {w.requests_per_s:,.0f} req/s"
                + (f" ({w.bad} failed)" if w.bad else "")
                for w in runs
            )
        )
