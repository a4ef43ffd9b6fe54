"""``/api/v1/klines``: candle history in the shape and paging of Binance's /api/v3/klines."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import msgspec
from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.enums import MediaType
from litestar.params import QueryParameter

from cryptochart.api import history
from cryptochart.api.candle_stats import row_stats
from cryptochart.api.candles import KlineRow, KlineRowWithSeconds
from cryptochart.api.catalog import Catalog, checked_symbol
from cryptochart.api.errors import InvalidParameter
from cryptochart.api.history import PageRow
from cryptochart.api.history_cache import HistoryCache, PageRequest
from cryptochart.api.intervals import INTERVALS, IntervalName
from cryptochart.core.database import AsyncConn

DEFAULT_LIMIT = 500
MAX_LIMIT = 1000

# withStats=true appends [vwap (null without volume), takerSellVolume], after the count if any.
KlineRowWithStats = tuple[
    int, str, str, str, str, str, int, str, int, str, str, str, str | None, str
]
KlineRowWithSecondsAndStats = tuple[
    int, str, str, str, str, str, int, str, int, str, str, str, int, str | None, str
]


def _time(name: str, role: str) -> QueryParameter:
    return QueryParameter(
        name=name, ge=0, le=history.MAX_TIME, description=f"Unix milliseconds: {role}, inclusive"
    )


class KlinesController(Controller):
    path = "/api/v1/klines"
    tags = ("market data",)

    @get(
        summary="Candles of one symbol and interval",
        description=(
            "Rows `[openTime, open, high, low, close, volume, closeTime, quoteVolume, trades, "
            'takerBuyBaseVolume, takerBuyQuoteVolume, "0"]`, ascending by openTime, decimals as '
            "exact strings. With startTime: the first `limit` candles opening at or after it; "
            "otherwise the newest `limit` candles opening at or before endTime (default: now). "
            "The newest candle is complete up to the latest stored 1s kline. With "
            "withSeconds=true each row gets a 13th element: how many 1s klines are behind the "
            "candle (60 for a whole minute), so partial candles can be told apart. With "
            "withStats=true each row gets two more strings: the VWAP (quoteVolume / volume, "
            "rounded half up at 18 decimals, trailing zeros dropped; null without volume) and "
            "the taker sell volume (volume - takerBuyBaseVolume), after the count if both."
        ),
    )
    async def klines(
        self,
        history_cache: NamedDependency[HistoryCache],
        catalog: NamedDependency[Catalog],
        symbol: Annotated[str, QueryParameter(description="e.g. BTCUSDT", max_length=64)],
        interval: Annotated[IntervalName, QueryParameter(description="candle length")],
        start_time: Annotated[int | None, _time("startTime", "the first open time")] = None,
        end_time: Annotated[int | None, _time("endTime", "the last open time")] = None,
        limit: Annotated[
            int, QueryParameter(ge=1, le=MAX_LIMIT, description="candles at most")
        ] = DEFAULT_LIMIT,
        with_seconds: Annotated[
            bool, QueryParameter(name="withSeconds", description="append the 1s kline count")
        ] = False,
        with_stats: Annotated[
            bool,
            QueryParameter(name="withStats", description="append VWAP and taker sell volume"),
        ] = False,
    ) -> Response[
        list[KlineRow]
        | list[KlineRowWithSeconds]
        | list[KlineRowWithStats]
        | list[KlineRowWithSecondsAndStats]
    ]:
        symbol = await checked_symbol(catalog, symbol)
        if start_time is not None and end_time is not None and start_time > end_time:
            raise InvalidParameter("startTime", "must not be after endTime")
        request = PageRequest(
            symbol, interval, start_time, end_time, limit, with_seconds, with_stats
        )

        async def read(conn: AsyncConn) -> list[PageRow]:
            return await history.klines(
                conn, INTERVALS[interval], symbol, start_time, end_time, limit
            )

        body = await history_cache.page(request, read, _renderer(with_seconds, with_stats))
        return _json(body)


def _json(body: bytes) -> Response[Any]:
    """Rows encoded already (maybe kept from an earlier request): sent as they are."""
    return Response(body, media_type=MediaType.JSON)


def _renderer(with_seconds: bool, with_stats: bool) -> Callable[[list[PageRow]], bytes]:
    """The page's rows as the wire's JSON; each row is already the wire's, with the count of
    seconds appended."""
    if with_seconds and with_stats:
        return lambda rows: _encode([(*r, *row_stats(r)) for r in rows])
    if with_stats:
        return lambda rows: _encode([(*r[:12], *row_stats(r)) for r in rows])
    if with_seconds:
        return _encode
    return lambda rows: _encode([r[:12] for r in rows])


_encode: Callable[[list[Any]], bytes] = msgspec.json.encode
