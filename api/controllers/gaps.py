"""``/api/v1/gaps``: which seconds of one symbol's 1s klines are missing in a bounded range."""

from __future__ import annotations

import time
from typing import Annotated

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from cryptochart.api import history
from cryptochart.api.catalog import Catalog, checked_symbol
from cryptochart.api.errors import InvalidParameter
from cryptochart.api.pool import Pool
from cryptochart.db.gaps import find_gaps_async

MAX_SECONDS = 86_400  # one request covers at most a day


class GapsAnswer(msgspec.Struct, rename="camel"):
    """The expected range ``[startTime, endTime)`` (ms), its counts, and what is missing."""

    symbol: str
    start_time: int
    end_time: int
    expected: int
    stored: int
    missing: int
    ranges: list[tuple[int, int]]  # [start, end) ms of each run of missing seconds
    short_minutes: list[tuple[int, int]]  # [openTime, seconds] of 1m candles under 60 seconds


class GapsController(Controller):
    path = "/api/v1/gaps"
    tags = ("data quality",)

    @get(
        summary="Missing 1s klines of one symbol",
        description=(
            "Every whole second from startTime (inclusive) to endTime (exclusive, default now) "
            "is expected, except those older than the raw retention and the current, still open "
            "second; at most 86400 seconds per request. Answers the counts, the missing ranges "
            "as [start, end) in ms, and the 1m candles holding fewer than 60 seconds."
        ),
    )
    async def gaps(
        self,
        pool: NamedDependency[Pool],
        catalog: NamedDependency[Catalog],
        raw_retention: NamedDependency[str],
        symbol: Annotated[str, QueryParameter(description="e.g. BTCUSDT", max_length=64)],
        start_time: Annotated[
            int,
            QueryParameter(
                name="startTime", ge=0, le=history.MAX_TIME, description="Unix ms, inclusive"
            ),
        ],
        end_time: Annotated[
            int | None,
            QueryParameter(
                name="endTime",
                ge=0,
                le=history.MAX_TIME,
                description="Unix ms, exclusive (default: now)",
            ),
        ] = None,
    ) -> GapsAnswer:
        symbol = await checked_symbol(catalog, symbol)
        end = end_time if end_time is not None else int(time.time() * 1000)
        named = "endTime" if end_time is not None else "startTime"
        if end <= start_time:
            raise InvalidParameter(named, "endTime must be after startTime")
        if (end - start_time) // 1000 > MAX_SECONDS:
            raise InvalidParameter(
                named, f"at most {MAX_SECONDS} seconds from startTime to endTime per request"
            )
        async with pool.connection() as conn:
            found = await find_gaps_async(
                conn, symbol, start_time, end, retention=raw_retention, settled="second"
            )
        return GapsAnswer(
            symbol=symbol,
            start_time=found.expected.start_ms,
            end_time=found.expected.end_ms,
            expected=found.expected.seconds,
            stored=found.stored_seconds,
            missing=found.missing_seconds,
            ranges=[(r.start_ms, r.end_ms) for r in found.missing],
            short_minutes=found.short_minutes,
        )
