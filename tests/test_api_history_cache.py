"""The API's history page cache: final pages are served from memory, and never once a late
kline has changed them.

Klines are written by the inserter's own ``write_batch`` as its role and rolled up by the minute
job as its role; the cache reads through the API's read-only pool, as the API does.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from decimal import Decimal

import msgspec
import psycopg
import pytest

from cryptochart.api import history
from cryptochart.api.config import ApiConfig
from cryptochart.api.history import PageRow
from cryptochart.api.history_cache import HistoryCache, PageRequest
from cryptochart.api.intervals import INTERVALS
from cryptochart.api.page_cache import Entry, PageCache
from cryptochart.api.pool import Pool, create_pool
from cryptochart.core.database import AsyncConn
from cryptochart.core.kline import Kline
from cryptochart.core.settings import Settings
from cryptochart.ingest.inserter import staging_rows, write_batch
from cryptochart.ingest.minute_job import MinuteJob
from tests.faults.expected import MINUTE_MS, SECOND_MS, past_start, sim_klines

MINUTES = 20


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[Pool]:
    pool = create_pool(settings.api_dsn, ApiConfig())
    await pool.open(wait=True)
    try:
        yield pool
    finally:
        await pool.close()


def write(settings: Settings, klines: list[Kline]) -> None:
    """As the inserter writes a batch, as its role."""
    with psycopg.connect(settings.inserter_dsn) as conn:
        write_batch(conn, staging_rows(enumerate(klines)))


def roll_up(settings: Settings) -> None:
    """One pass of the minute job, as its role."""
    with psycopg.connect(settings.minute_job_dsn, autocommit=True) as conn:
        MinuteJob(settings).run_once(conn)


def late(k: Kline) -> Kline:
    """The same second again, its close and high raised past anything the minute held."""
    high = k.high * 2
    return msgspec.structs.replace(k, high=high, close=high)


async def page(cache: HistoryCache, request: PageRequest) -> list[list[object]]:
    async def read(conn: AsyncConn) -> list[PageRow]:
        return await history.klines(
            conn,
            INTERVALS[request.interval],
            request.symbol,
            request.start,
            request.end,
            request.limit,
        )

    body = await cache.page(request, read, msgspec.json.encode)
    rows: list[list[object]] = json.loads(body)
    return rows


async def history_of(
    settings: Settings, symbol: str
) -> tuple[list[Kline], PageRequest, PageRequest]:
    """Twenty minutes of ``symbol`` written and rolled up; a 1m page of minutes 2 to 6 and a 1s
    page of 1,000 seconds from the start, both final."""
    start = past_start((MINUTES + 2) * 60)
    klines = await asyncio.to_thread(sim_klines, [symbol], 7, start, MINUTES * 60)
    await asyncio.to_thread(write, settings, klines)
    await asyncio.to_thread(roll_up, settings)
    minutes = PageRequest(
        symbol, "1m", start + 2 * MINUTE_MS, start + 6 * MINUTE_MS, 500, True, False
    )
    seconds = PageRequest(symbol, "1s", start, None, 1000, True, False)
    return klines, minutes, seconds


@pytest.mark.parametrize("interval", ["1m", "1s"])
async def test_a_late_kline_is_served_at_once_never_the_cached_page(
    settings: Settings, pool: Pool, interval: str
) -> None:
    symbol = f"CACHE{interval.upper()}USDT"
    cache = HistoryCache(pool, 16 * 1024 * 1024)
    klines, minutes, seconds = await history_of(settings, symbol)
    request = minutes if interval == "1m" else seconds
    first = await page(cache, request)
    assert len(first) == (5 if interval == "1m" else 1000)
    assert await page(cache, request) == first
    assert cache.hits == 1  # the second answer came from memory

    # A late correction of minute 3's 30th second, through the inserter.
    corrected = late(klines[3 * 60 + 30])
    await asyncio.to_thread(write, settings, [corrected])
    if interval == "1s":
        # kline_1s holds it at once: the next answer has it.
        row = next(r for r in await page(cache, request) if r[0] == corrected.open_time)
        assert (Decimal(str(row[2])), Decimal(str(row[4]))) == (corrected.high, corrected.close)
    await asyncio.to_thread(roll_up, settings)
    after = await page(cache, request)
    uncached = await page(HistoryCache(pool, 0), request)
    assert after == uncached != first
    if interval == "1m":
        minute = next(r for r in after if r[0] == corrected.open_time - 30 * SECOND_MS)
        assert Decimal(str(minute[2])) == corrected.high  # re-aggregated: the new high
    # Final again, and kept again.
    hits = cache.hits
    assert await page(cache, request) == after
    assert cache.hits == hits + 1


async def test_the_newest_page_keeps_its_final_rows_and_shows_a_late_kline(
    settings: Settings, pool: Pool
) -> None:
    cache = HistoryCache(pool, 16 * 1024 * 1024)
    klines, _, _ = await history_of(settings, "CACHETOPUSDT")
    newest = PageRequest("CACHETOPUSDT", "1m", None, None, 15, True, True)
    first = await page(cache, newest)
    assert first == await page(HistoryCache(pool, 0), newest)
    assert len(first) == 15 and first[-1][0] == klines[-1].open_time - 59 * SECOND_MS
    assert await page(cache, newest) == first
    assert cache.hits == 1  # the 14 final rows came from memory; the newest one was read

    corrected = late(klines[10 * 60 + 30])  # minute 10: among the final rows
    await asyncio.to_thread(write, settings, [corrected])
    await asyncio.to_thread(roll_up, settings)
    after = await page(cache, newest)
    assert after == await page(HistoryCache(pool, 0), newest) != first
    minute = next(r for r in after if r[0] == corrected.open_time - 30 * SECOND_MS)
    assert Decimal(str(minute[2])) == corrected.high


async def test_a_write_elsewhere_leaves_the_page_cached(settings: Settings, pool: Pool) -> None:
    cache = HistoryCache(pool, 16 * 1024 * 1024)
    klines, minutes, _ = await history_of(settings, "CACHEKEEPUSDT")
    first = await page(cache, minutes)
    # Minute 9 gets a late second: outside the page of minutes 2 to 6.
    await asyncio.to_thread(write, settings, [late(klines[9 * 60 + 5])])
    await asyncio.to_thread(roll_up, settings)
    assert await page(cache, minutes) == first
    assert cache.hits == 1


async def test_no_kept_page_reaches_the_newest_bucket(settings: Settings, pool: Pool) -> None:
    cache = HistoryCache(pool, 16 * 1024 * 1024)
    klines, _, _ = await history_of(settings, "CACHENEWUSDT")
    newest_minute = klines[-1].open_time - 59 * SECOND_MS
    newest = PageRequest("CACHENEWUSDT", "1m", None, None, 5, False, False)
    through_now = PageRequest("CACHENEWUSDT", "1m", klines[0].open_time, None, 500, False, False)
    seconds = PageRequest("CACHENEWUSDT", "1s", None, None, 1000, False, False)
    for request in (newest, through_now, seconds):
        assert await page(cache, request) == await page(cache, request)
    kept = [entry for _, entry in cache.pages.of_symbol("CACHENEWUSDT")]
    assert len(kept) == 1  # the newest page's 4 final rows
    assert kept[0].hi == newest_minute and len(json.loads(kept[0].body)) == 4


def test_the_page_cache_keeps_to_its_byte_budget() -> None:
    cache = PageCache(100)
    for i in range(5):
        cache.put(i, Entry("X", 0, 1, bytes(30), None, 0))
    assert cache.size == 90 and {k for k, _ in cache.of_symbol("X")} == {2, 3, 4}
    assert cache.get(2) is not None  # now the most recently used
    cache.put(5, Entry("X", 0, 1, bytes(30), None, 0))
    assert {k for k, _ in cache.of_symbol("X")} == {2, 4, 5}
    cache.put(6, Entry("X", 0, 1, bytes(101), None, 0))  # over the whole budget: not kept
    assert cache.peek(6) is None and cache.size == 90
