"""`cryptochart audit`: per symbol and UTC day, the seconds ``kline_1s`` should hold, holds and
lacks (as ranges), and the minutes of ``kline_1m`` short of 60 seconds.

With ``--repair`` the missing ranges are fetched from the exchange's REST klines and published to
Kafka like live klines, so the running inserter stores them and the minute job re-aggregates their
minutes; then the same range is audited again and what could not be got is reported. Which
seconds are expected is defined once, in :mod:`cryptochart.db.gaps`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from tqdm import tqdm

from cryptochart.core.database import connect
from cryptochart.core.kline import Kline
from cryptochart.core.settings import Settings
from cryptochart.db.gaps import Gaps, SecondRange, find_gaps, to_datetime
from cryptochart.ingest.backfill import BackfillRange, wait_stored
from cryptochart.ingest.producer import KlineProducer
from cryptochart.ingest.sources.base import Rejected
from cryptochart.ingest.sources.binance.rest import BinanceRest, BinanceRestError

log = logging.getLogger(__name__)

DAY_MS = 86_400_000
MINUTE_MS = 60_000
LISTED_PER_DAY = 10  # missing ranges and short minutes printed per symbol and day


@dataclass(frozen=True)
class AuditRequest:
    """Symbols and the requested ``[start_ms, end_ms)``; no start: each symbol's first second."""

    symbols: Sequence[str]
    start_ms: int | None
    end_ms: int


@dataclass
class RepairReport:
    published: int = 0
    rejected: int = 0
    failed: list[str] = field(default_factory=list)  # ranges the exchange did not answer for


def default_end_ms(now: datetime | None = None) -> int:
    """The start of the current minute: the minutes before it are final."""
    now = now or datetime.now(UTC)
    return int(now.timestamp()) // 60 * MINUTE_MS


def audit(settings: Settings, request: AuditRequest) -> list[Gaps]:
    """Every symbol's gaps in the requested range, with a progress bar over the symbols."""
    with connect(settings.database_url) as conn:
        conn.autocommit = True
        return [
            find_gaps(
                conn,
                symbol,
                request.start_ms,
                request.end_ms,
                retention=settings.retention_1s,
                settled="minute",
            )
            for symbol in tqdm(request.symbols, desc="audit", unit="symbol")
        ]


def repair(settings: Settings, found: list[Gaps], wait_seconds: float) -> RepairReport:
    """Fetch and publish every missing range, then wait until stored and aggregated."""
    ranges = [(g.symbol, r) for g in found for r in g.missing]
    if not ranges:
        return RepairReport()
    window = BackfillRange(
        sorted({g.symbol for g in found if g.missing}),
        min(r.start_ms for _, r in ranges),
        max(r.end_ms for _, r in ranges),
    )
    before = stored_rows(settings, window)
    report = asyncio.run(publish_missing(settings, ranges))
    wait_stored(settings, window, before + report.published, wait_seconds)
    return report


async def publish_missing(
    settings: Settings, ranges: list[tuple[str, SecondRange]]
) -> RepairReport:
    report = RepairReport()
    producer = KlineProducer(settings, "binance")
    total = sum(r.seconds for _, r in ranges)
    with tqdm(total=total, unit="kline", desc="repair") as bar:
        async with BinanceRest(settings.binance_rest_url) as rest:
            for symbol, missing in ranges:
                try:
                    async for item in rest.klines(symbol, missing.start_ms, missing.end_ms):
                        if isinstance(item, Kline):
                            producer.publish(item)
                            bar.update()
                        elif isinstance(item, Rejected):
                            producer.reject(item)
                except BinanceRestError as exc:
                    report.failed.append(f"{symbol} {describe(missing)}: {exc}")
                    log.error("repair of %s %s failed: %s", symbol, describe(missing), exc)
    undelivered = await asyncio.to_thread(producer.flush, 60.0)
    if undelivered:
        raise RuntimeError(f"{undelivered} repaired klines were not delivered to Kafka")
    report.published = producer.counts["closed"]
    report.rejected = producer.counts["rejected"]
    return report


def stored_rows(settings: Settings, window: BackfillRange) -> int:
    with connect(settings.database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM kline_1s WHERE symbol = ANY(%s) "
            "AND open_time >= %s AND open_time < %s",
            (list(window.symbols), to_datetime(window.start_ms), to_datetime(window.end_ms)),
        ).fetchone()
    return int(str(row[0])) if row else 0


# --- the report ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Day:
    """One symbol's audit within one UTC day."""

    symbol: str
    day: datetime
    expected: int
    missing: list[SecondRange]
    short_minutes: list[tuple[int, int]]

    @property
    def missing_seconds(self) -> int:
        return sum(r.seconds for r in self.missing)


def days(gaps: Gaps) -> Iterator[Day]:
    """``gaps`` cut at UTC midnights."""
    start, end = gaps.expected.start_ms, gaps.expected.end_ms
    day_start = start // DAY_MS * DAY_MS
    while day_start < end:
        lo, hi = max(start, day_start), min(end, day_start + DAY_MS)
        clipped = [
            SecondRange(max(r.start_ms, lo), min(r.end_ms, hi))
            for r in gaps.missing
            if r.start_ms < hi and r.end_ms > lo
        ]
        short = [(t, n) for t, n in gaps.short_minutes if day_start <= t < day_start + DAY_MS]
        yield Day(gaps.symbol, to_datetime(day_start), (hi - lo) // 1000, clipped, short)
        day_start += DAY_MS


def counted(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def clock(ms: int, with_seconds: bool = True) -> str:
    return to_datetime(ms).strftime("%H:%M:%S" if with_seconds else "%H:%M")


def describe(r: SecondRange) -> str:
    """A range as its first and last missing second, UTC."""
    first, last = to_datetime(r.start_ms), to_datetime(r.end_ms - 1000)
    if r.seconds == 1:
        return f"{first:%Y-%m-%d %H:%M:%S} (1 s)"
    shown = f"{last:%H:%M:%S}" if first.date() == last.date() else f"{last:%Y-%m-%d %H:%M:%S}"
    return f"{first:%Y-%m-%d %H:%M:%S} to {shown} ({r.seconds} s)"


def _listed(items: list[str]) -> str:
    more = len(items) - LISTED_PER_DAY
    return ", ".join(items[:LISTED_PER_DAY]) + (f", … {more} more" if more > 0 else "")


def report_lines(found: list[Gaps]) -> Iterator[str]:
    """Per symbol and UTC day: expected, stored, missing ranges and short minutes."""
    for gaps in found:
        if gaps.nothing_stored:
            yield f"{gaps.symbol}: nothing stored (give --from to audit a range)"
            continue
        if gaps.expected.seconds == 0:
            yield f"{gaps.symbol}: no seconds expected in this range"
            continue
        for day in days(gaps):
            yield (
                f"{day.symbol} {day.day:%Y-%m-%d}: {day.expected} expected, "
                f"{day.expected - day.missing_seconds} stored, {day.missing_seconds} missing in "
                f"{counted(len(day.missing), 'range')}, "
                f"{counted(len(day.short_minutes), 'minute')} under 60 seconds"
            )
            if day.missing:
                yield "  missing " + _listed(
                    [
                        f"{clock(r.start_ms)}"
                        + (f" to {clock(r.end_ms - 1000)}" if r.seconds > 1 else "")
                        + f" ({r.seconds} s)"
                        for r in day.missing
                    ]
                )
            if day.short_minutes:
                yield "  short minutes " + _listed(
                    [f"{clock(t, False)} ({n} s)" for t, n in day.short_minutes]
                )


def summary(found: list[Gaps]) -> str:
    expected = sum(g.expected.seconds for g in found)
    missing = sum(g.missing_seconds for g in found)
    ranges = sum(len(g.missing) for g in found)
    empty = [g.symbol for g in found if g.nothing_stored]
    line = (
        f"{counted(len(found), 'symbol')}: {expected} seconds expected, "
        f"{expected - missing} stored, {missing} missing in {counted(ranges, 'range')}"
    )
    return line + (f"; nothing stored for {', '.join(empty)}" if empty else "")


def unrepaired(found: list[Gaps]) -> Iterator[str]:
    """What is still missing, one range a line."""
    for gaps in found:
        if gaps.nothing_stored:
            yield f"{gaps.symbol}: nothing stored and no --from to say what to fetch"
        for missing in gaps.missing:
            yield f"{gaps.symbol} {describe(missing)}"
