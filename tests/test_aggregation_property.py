"""Property: whatever 1s klines arrive, kline_1m and kline_5m equal a plain Python aggregation."""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import replace
from decimal import Decimal

import psycopg
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from cryptochart.core.kline import Kline
from cryptochart.core.settings import Settings
from cryptochart.ingest.inserter import staging_rows, write_batch
from cryptochart.ingest.minute_job import MinuteJob
from cryptochart.ingest.split_rollup import MIN_SYMBOLS
from tests.pipeline import as_candle, candles, rolled_up

START = 1_709_251_200_000  # 2024-03-01 00:00:00 UTC, ms
names = (f"PROP{i}USDT" for i in itertools.count())

prices = st.decimals(
    min_value=Decimal("0.00000001"),
    max_value=Decimal("99999.99999999"),
    places=8,
    allow_nan=False,
    allow_infinity=False,
)
amounts = st.decimals(
    min_value=Decimal(0),
    max_value=Decimal("1000000.12345678"),
    places=8,
    allow_nan=False,
    allow_infinity=False,
)


@st.composite
def second(draw: st.DrawFn, offset: int) -> Kline:
    a, b, c, d = sorted(draw(st.lists(prices, min_size=4, max_size=4)))
    open_, close = (b, c) if draw(st.booleans()) else (c, b)
    base, taker = sorted(draw(st.lists(amounts, min_size=2, max_size=2)), reverse=True)
    quote, taker_quote = sorted(draw(st.lists(amounts, min_size=2, max_size=2)), reverse=True)
    open_time = START + offset * 1000
    return Kline(
        "",
        open_time,
        open_time + 999,
        open_,
        d,
        a,
        close,
        base,
        quote,
        draw(st.integers(0, 10_000)),
        taker,
        taker_quote,
    )


@st.composite
def klines(draw: st.DrawFn) -> list[Kline]:
    # Up to 12 minutes of seconds with gaps, so 5m buckets are crossed and minutes are partial.
    offsets = draw(st.sets(st.integers(0, 12 * 60 - 1), min_size=1, max_size=200))
    return [draw(second(o)) for o in sorted(offsets)]


def reference(seconds: list[Kline], bucket_ms: int) -> list[tuple[object, ...]]:
    groups: dict[int, list[Kline]] = defaultdict(list)
    for k in seconds:
        groups[k.open_time - k.open_time % bucket_ms].append(k)
    out: list[tuple[object, ...]] = []
    for start, ks in sorted(groups.items()):
        out.append((start, *rolled_up(ks)))
    return out


@hsettings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=st.lists(klines(), min_size=1, max_size=1), split=st.integers(1, 5))
def test_aggregates_equal_reference(
    settings: Settings, batches: list[list[Kline]], split: int
) -> None:
    history = replace(settings, retention_1s="100 years")
    symbol = next(names)
    seconds = [replace_symbol(k, symbol) for k in batches[0]]
    job = MinuteJob(history)
    with psycopg.connect(history.database_url) as conn:
        # Arrive in `split` batches, with the minute job running between them.
        for part in range(split):
            chunk = seconds[part::split]
            if chunk:
                write_batch(conn, staging_rows(enumerate(chunk)))
            job.run_once(conn)
    assert candles(history, "kline_1s", symbol) == [as_candle(k) for k in seconds]
    assert candles(history, "kline_1m", symbol) == reference(seconds, 60_000)
    assert candles(history, "kline_5m", symbol) == reference(seconds, 300_000)


def test_many_symbols_roll_up_alike_split_or_not(settings: Settings) -> None:
    """Enough symbols for plain PostgreSQL to split the 1m roll-up over two connections: every
    symbol's candles are still the reference's, in either half."""
    history = replace(settings, retention_1s="100 years")
    base = next(names)
    seconds = {
        f"{base}X{i:03d}": [
            fixed_second(f"{base}X{i:03d}", offset, i) for offset in range(i % 7, 130, 11 + i % 5)
        ]
        for i in range(MIN_SYMBOLS + 6)
    }
    with MinuteJob(history) as job, psycopg.connect(history.database_url) as conn:
        write_batch(conn, staging_rows(enumerate(itertools.chain(*seconds.values()))))
        job.run_once(conn)
    if history.db_flavour == "postgres":
        assert job.helper.splits == 1
    for symbol, ks in seconds.items():
        assert candles(history, "kline_1m", symbol) == reference(ks, 60_000), symbol


def fixed_second(symbol: str, offset: int, seed: int) -> Kline:
    """A consistent 1s kline whose values follow from ``offset`` and ``seed``."""
    low = Decimal(100 + seed) + Decimal(offset) / 100
    open_time = START + offset * 1000
    return Kline(
        symbol,
        open_time,
        open_time + 999,
        low + Decimal("0.5"),
        low + Decimal("1.25"),
        low,
        low + Decimal("0.75"),
        Decimal(offset + 1) / 8,
        Decimal(seed + 1) * 3,
        offset,
        Decimal(offset + 1) / 16,
        Decimal(seed + 1),
    )


def replace_symbol(k: Kline, symbol: str) -> Kline:
    import msgspec

    return msgspec.structs.replace(k, symbol=symbol)
