"""What a scenario produced, worked out in Python: the simulated feed's klines and their
aggregates at every level, keyed like the database's rows."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal

from cryptochart.core.kline import Kline, candle
from cryptochart.ingest.sources.simulated import SimulatedSource

MINUTE_MS = 60_000
SECOND_MS = 1_000

# (open_ms, close_ms, open, high, low, close, volume, quote_volume, trades, taker base, taker
# quote): one kline_1s row; aggregate rows carry ``seconds`` after it.
Row = tuple[object, ...]
Key = tuple[str, int]  # (symbol, open_ms)


def sim_klines(symbols: Sequence[str], seed: int, start_ms: int, count: int) -> list[Kline]:
    """The closed klines SimulatedSource yields for these arguments, flat out."""

    async def collect() -> list[Kline]:
        source = SimulatedSource(symbols, seed, speed=None, start_ms=start_ms, count=count)
        return [k async for k in source.stream() if isinstance(k, Kline)]

    return asyncio.run(collect())


def live_sim_klines(symbols: Sequence[str], seed: int, first_ms: int, closed: int) -> list[Kline]:
    """The first ``closed`` klines a live simulated feed started at ``first_ms`` published."""
    seconds = -(-closed // len(symbols))
    return sim_klines(symbols, seed, first_ms, seconds)[:closed]


def minute_start(ms: int) -> int:
    return ms - ms % MINUTE_MS


def past_start(count: int, now_ms: int | None = None) -> int:
    """A whole minute far enough back that ``count`` seconds from it end before now."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    return minute_start(now - count * SECOND_MS - MINUTE_MS)


def by_key(klines: Iterable[Kline]) -> dict[Key, Row]:
    return {(k.symbol, k.open_time): candle(k) for k in klines}


LEVELS = {"1m": MINUTE_MS, "5m": 5 * MINUTE_MS, "15m": 15 * MINUTE_MS, "1h": 60 * MINUTE_MS}
LEVELS["1d"] = 24 * LEVELS["1h"]


def candles(klines: Iterable[Kline], bucket_ms: int = MINUTE_MS) -> dict[Key, Row]:
    """An aggregate level computed in Python from 1s klines: first open, max high, min low, last
    close, last close_time, the rest summed; ``seconds`` = the 1s klines behind the candle.
    Buckets are aligned to the Unix epoch. Decimal-exact."""
    groups: dict[Key, list[Kline]] = defaultdict(list)
    for k in klines:
        groups[(k.symbol, k.open_time - k.open_time % bucket_ms)].append(k)
    out: dict[Key, Row] = {}
    for (symbol, bucket), ks in groups.items():
        ks.sort(key=lambda k: k.open_time)
        out[(symbol, bucket)] = (
            bucket,
            ks[-1].close_time,
            ks[0].open,
            max(k.high for k in ks),
            min(k.low for k in ks),
            ks[-1].close,
            sum((k.volume for k in ks), Decimal(0)),
            sum((k.quote_volume for k in ks), Decimal(0)),
            sum(k.trades for k in ks),
            sum((k.taker_buy_base_volume for k in ks), Decimal(0)),
            sum((k.taker_buy_quote_volume for k in ks), Decimal(0)),
            len(ks),
        )
    return out


def final_buckets(klines: Sequence[Kline], bucket_ms: int = MINUTE_MS) -> Callable[[Key], bool]:
    """Whether a bucket is before its symbol's last (possibly still open) bucket of ``klines``:
    no later kline of that symbol can change it."""
    last: dict[str, int] = {}
    for k in klines:
        last[k.symbol] = max(last.get(k.symbol, 0), k.open_time - k.open_time % bucket_ms)
    return lambda key: key[1] < last.get(key[0], 0)


def unique_klines(klines: Iterable[Kline]) -> Iterator[Kline]:
    """Each (symbol, open_time) once; a second, different kline for one key fails."""
    seen: dict[Key, Row] = {}
    for k in klines:
        key, row = (k.symbol, k.open_time), candle(k)
        if key in seen:
            assert seen[key] == row, f"two different klines for {key}: {seen[key]} and {row}"
            continue
        seen[key] = row
        yield k
