"""The simulated feed: deterministic, consistent, Binance-shaped, cheap for 1,000 symbols."""

from __future__ import annotations

import itertools
import time
from collections import defaultdict
from decimal import Decimal

from cryptochart.core.kline import Kline, validate
from cryptochart.ingest.sources.simulated import SimulatedSource

START = 1_709_251_200_000  # 2024-03-01 00:00:00 UTC
SYMBOLS = ["BTCUSDT", "ETHUSDT", "DOGEUSDT", "PEPEUSDT", "XYZ1USDT"]


async def klines_of(source: SimulatedSource, limit: int | None = None) -> list[Kline]:
    klines: list[Kline] = []
    async for item in source.stream():
        assert isinstance(item, Kline)
        klines.append(item)
        if limit is not None and len(klines) == limit:
            break
    return klines


async def test_the_same_seed_gives_the_same_klines() -> None:
    first = await klines_of(SimulatedSource(SYMBOLS, 7, speed=None, start_ms=START, count=300))
    again = await klines_of(SimulatedSource(SYMBOLS, 7, speed=None, start_ms=START, count=300))
    other = await klines_of(SimulatedSource(SYMBOLS, 8, speed=None, start_ms=START, count=300))
    assert first == again
    assert first != other
    assert len(first) == 300 * len(SYMBOLS)


async def test_klines_are_consistent_and_shaped_like_binance() -> None:
    klines = await klines_of(SimulatedSource(SYMBOLS, 3, speed=None, start_ms=START, count=600))
    by_symbol: dict[str, list[Kline]] = defaultdict(list)
    for kline in klines:
        by_symbol[kline.symbol].append(validate(kline))
    decimals_seen = set()
    for symbol, series in by_symbol.items():
        assert [k.open_time for k in series] == list(range(START, START + 600_000, 1000))
        assert all(k.close_time == k.open_time + 999 and k.closed for k in series)
        assert all(b.open == a.close for a, b in itertools.pairwise(series))
        places = price_places(series)
        assert 2 <= places <= 8, symbol
        decimals_seen.add(places)
        for k in series:
            assert k.open.as_tuple().exponent == -8  # printed like Binance: 8 places
            assert k.taker_buy_base_volume <= k.volume
            assert k.taker_buy_quote_volume <= k.quote_volume
            assert k.low * k.volume - Decimal("1e-8") <= k.quote_volume <= k.high * k.volume
            assert (k.trades == 0) == (k.volume == 0)
        assert sum(k.trades for k in series) > 0
    assert {2, 6} <= decimals_seen  # BTC and DOGE grids, at least


def price_places(series: list[Kline]) -> int:
    """The fewest decimals that hold every price of the series."""
    prices = [p for k in series for p in (k.open, k.high, k.low, k.close)]
    return next(d for d in range(9) if all(p.scaleb(d) % 1 == 0 for p in prices))


async def test_a_thousand_symbols_flat_out_cost_little() -> None:
    symbols = [f"SYM{i}USDT" for i in range(1000)]
    # CPU time, not wall time: what the generation costs, whatever else the machine runs.
    started = time.process_time()
    klines = await klines_of(SimulatedSource(symbols, 1, speed=None, start_ms=START, count=10))
    cpu = time.process_time() - started
    assert len(klines) == 10_000
    assert {k.symbol for k in klines} == set(symbols)
    assert klines[-1].open_time == START + 9_000
    # Flat out never waits for the clock: each kline's event time is its own close.
    assert all(k.event_time == k.open_time + 1000 for k in klines)
    assert cpu < 2.0, f"{cpu:.2f} CPU seconds for 10,000 klines"


async def test_live_klines_follow_the_clock_for_a_thousand_symbols() -> None:
    symbols = [f"SYM{i}USDT" for i in range(1000)]
    asked = int(time.time()) * 1000
    klines = await klines_of(SimulatedSource(symbols, 1), limit=1000)
    received = time.time() * 1000
    open_time = klines[0].open_time
    assert open_time % 1000 == 0
    assert open_time >= asked  # the current second, not history
    assert {k.open_time for k in klines} == {open_time}  # one closed kline per symbol per second
    assert all(k.event_time >= k.close_time + 1 for k in klines)  # sent after the second closed
    assert received >= open_time + 1000  # not before the second closed


async def test_until_bounds_the_flat_out_run() -> None:
    source = SimulatedSource(["BTCUSDT"], speed=None, start_ms=START, until_ms=START + 5_000)
    assert [k.open_time for k in await klines_of(source)] == list(range(START, START + 5000, 1000))


async def test_catch_up_generates_the_past_then_goes_on_live_as_one_walk() -> None:
    now_ms = int(time.time()) * 1000
    start = now_ms - 5_000
    source = SimulatedSource(["BTCUSDT"], 3, start_ms=start, catch_up=True)
    klines = await klines_of(source, limit=7)
    received_ms = time.time() * 1000
    assert [k.open_time for k in klines] == [start + 1000 * i for i in range(7)]
    # One walk: each second opens at the previous close, across the history/live boundary.
    assert all(b.open == a.close for a, b in itertools.pairwise(klines))
    # The live seconds are not emitted before they close.
    assert klines[-1].open_time >= now_ms
    assert received_ms >= klines[-1].close_time
    history_only = await klines_of(
        SimulatedSource(["BTCUSDT"], 3, speed=None, start_ms=start, count=5)
    )
    assert klines[:5] == [
        replace_event_time(k, h) for k, h in zip(klines[:5], history_only, strict=True)
    ]


def replace_event_time(k: Kline, like: Kline) -> Kline:
    import msgspec

    return msgspec.structs.replace(like, event_time=k.event_time)
