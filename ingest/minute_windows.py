"""Which time windows the minute job refreshes, from the checkpoints' written ranges.

Every window is aligned to whole buckets of its level (TimescaleDB refuses a refresh window that
cuts a bucket, and a partial window would aggregate a partial bucket).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def floor_to(t: datetime, bucket: timedelta) -> datetime:
    return EPOCH + ((t - EPOCH) // bucket) * bucket


def ceil_to(t: datetime, bucket: timedelta) -> datetime:
    floored = floor_to(t, bucket)
    return floored if floored == t else floored + bucket


@dataclass(frozen=True, order=True)
class Window:
    """[start, end) of one symbol's data to aggregate."""

    symbol: str
    start: datetime
    end: datetime

    def widened(self, bucket: timedelta) -> Window:
        """The smallest bucket-aligned window of ``bucket`` that covers this one."""
        return Window(self.symbol, floor_to(self.start, bucket), ceil_to(self.end, bucket))


@dataclass(frozen=True)
class Pending:
    """A checkpoint row not yet aggregated: the range of 1s open times written for a symbol."""

    id: int
    symbol: str
    first_open_time: datetime
    last_open_time: datetime
    rows: int


def minute_window(pending: Pending, cut: datetime, oldest: datetime) -> Window | None:
    """The whole minutes of ``pending`` before ``cut`` (not older than ``oldest``), if any."""
    start = max(floor_to(pending.first_open_time, MINUTE), ceil_to(oldest, MINUTE))
    end = min(floor_to(pending.last_open_time, MINUTE) + MINUTE, cut)
    return Window(pending.symbol, start, end) if start < end else None


def cut_time(watermark: datetime | None, now: datetime, grace: timedelta) -> datetime:
    """Minutes before the cut are final: every active symbol has written its last second, or
    the grace for late klines has passed."""
    by_grace = floor_to(now - grace, MINUTE)
    if watermark is None:
        return by_grace
    return max(floor_to(watermark + timedelta(seconds=1), MINUTE), by_grace)


def merged_windows(windows: Iterable[Window]) -> list[Window]:
    """Each symbol's windows with overlapping or touching ones merged, by symbol and start."""
    out: list[Window] = []
    for w in sorted(windows):
        if out and out[-1].symbol == w.symbol and w.start <= out[-1].end:
            out[-1] = Window(w.symbol, out[-1].start, max(out[-1].end, w.end))
        else:
            out.append(w)
    return out


def merged_ranges(windows: Iterable[Window]) -> list[tuple[datetime, datetime]]:
    """The windows' time ranges, all symbols together, overlapping or touching ones merged."""
    ranges: list[tuple[datetime, datetime]] = []
    for w in sorted(windows, key=lambda w: (w.start, w.end)):
        if ranges and w.start <= ranges[-1][1]:
            ranges[-1] = (ranges[-1][0], max(ranges[-1][1], w.end))
        else:
            ranges.append((w.start, w.end))
    return ranges
