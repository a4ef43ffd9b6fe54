"""In-progress candles of the intervals above 1s, kept current by every 1s kline from Kafka.

A followed (symbol, interval) starts from the database's tail of its current bucket and folds in
each closed 1s kline after it; an in-progress 1s kline shows on top without being folded in.
The closed klines of the last minute are kept per symbol, so a seed read from a database that
lags Kafka is completed from memory (a database further behind is read again: seeding.py).
A decoded kline takes about 1.1 KB, so this memory is the API's largest: a minute of 1,000
symbols is ~70 MB (five minutes were ~340 MB).
"""

from __future__ import annotations

from collections import defaultdict, deque
from typing import NamedTuple

from cryptochart.api.candles import SECOND_MS, Candle, rebucket
from cryptochart.api.intervals import Interval, floor_to
from cryptochart.core.kline import Kline

RECENT_SECONDS = 60


class Update(NamedTuple):
    interval: Interval
    candle: Candle
    closed: bool  # the bucket's last second has closed


class LiveCandles:
    def __init__(self, recent_seconds: int = RECENT_SECONDS) -> None:
        self._recent: defaultdict[str, deque[Kline]] = defaultdict(
            lambda: deque(maxlen=recent_seconds)
        )
        # symbol -> interval name -> (interval, folded closed klines of the current bucket)
        self._followed: defaultdict[str, dict[str, tuple[Interval, Candle | None]]] = defaultdict(
            dict
        )

    def newest_second(self, symbol: str) -> int | None:
        recent = self._recent.get(symbol)
        return recent[-1].open_time if recent else None

    def seed(self, symbol: str, interval: Interval, candle: Candle | None) -> bool:
        """Follow ``interval`` of ``symbol`` from the database's ``candle``; return whether
        the memory misses seconds after it (the database lagged more than memory reaches)."""
        after = -1 if candle is None else candle.last_second
        recent = self._recent.get(symbol, ())
        for kline in recent:
            if kline.open_time > after:
                candle = _fold(candle, kline, interval) or candle
        self._followed[symbol][interval.name] = (interval, candle)
        first = next((k.open_time for k in recent if k.open_time > after), None)
        return after >= 0 and first is not None and first > after + SECOND_MS

    def snapshot(self, symbol: str, interval: Interval) -> Candle | None:
        return self._followed.get(symbol, {}).get(interval.name, (interval, None))[1]

    def forget(self, symbol: str, interval: Interval) -> None:
        followed = self._followed.get(symbol)
        if followed is not None:
            followed.pop(interval.name, None)
            if not followed:
                del self._followed[symbol]

    def apply(self, kline: Kline) -> list[Update]:
        """Take one 1s kline; return the candle to show now for each followed interval."""
        if kline.closed:
            recent = self._recent[kline.symbol]
            if recent and kline.open_time <= recent[-1].open_time:
                return []  # a redelivered or late second: already counted
            recent.append(kline)
        followed = self._followed.get(kline.symbol)
        if not followed:
            return []
        updates = []
        for name, (interval, candle) in followed.items():
            shown = _fold(candle, kline, interval)
            if shown is None:
                continue
            if kline.closed:
                followed[name] = (interval, shown)
            last = kline.open_time + SECOND_MS == shown.open_time + interval.ms
            updates.append(Update(interval, shown, kline.closed and last))
        return updates


def _fold(candle: Candle | None, kline: Kline, interval: Interval) -> Candle | None:
    """``candle`` with ``kline`` folded in; None when the kline adds nothing (old or repeated)."""
    bucket = floor_to(kline.open_time, interval)
    second = Candle.of_kline(kline)
    if candle is None or bucket > candle.open_time:
        return rebucket(second, interval)
    if bucket < candle.open_time or kline.open_time <= candle.last_second:
        return None
    return candle.then(second, bucket)
