"""The candle intervals the API serves, each read from its own relation.

Mirrors the ``kline_interval`` table (which the API's role may not read): every level above 1s
is rolled up from the one named in ``finer``, buckets aligned to the Unix epoch.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

IntervalName = Literal["1s", "1m", "5m", "15m", "1h", "1d"]


class Interval(NamedTuple):
    name: IntervalName
    ms: int
    relation: str
    finer: IntervalName | None  # the level this one is rolled up from; None for kline_1s


INTERVALS: dict[str, Interval] = {
    i.name: i
    for i in (
        Interval("1s", 1_000, "kline_1s", None),
        Interval("1m", 60_000, "kline_1m", "1s"),
        Interval("5m", 300_000, "kline_5m", "1m"),
        Interval("15m", 900_000, "kline_15m", "5m"),
        Interval("1h", 3_600_000, "kline_1h", "15m"),
        Interval("1d", 86_400_000, "kline_1d", "1h"),
    )
}


def floor_to(ms: int, interval: Interval) -> int:
    """Open time of the bucket holding ``ms``."""
    return ms - ms % interval.ms


def ceil_to(ms: int, interval: Interval) -> int:
    """Open time of the first bucket at or after ``ms``."""
    return -(-ms // interval.ms) * interval.ms
