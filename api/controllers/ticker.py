"""``/api/v1/ticker``: rolling 24-hour statistics, like Binance's /api/v3/ticker/24hr."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from cryptochart.api.catalog import Catalog, checked_symbol, symbols_with_data
from cryptochart.api.errors import InvalidParameter
from cryptochart.api.pool import Pool
from cryptochart.api.shared import Shared
from cryptochart.api.tickers import Ticker, last_day, ticker

MAX_SYMBOLS = 100


class TickerController(Controller):
    path = "/api/v1/ticker"
    tags = ("market data",)

    @get(summary="24-hour tickers of some symbols, or of all symbols with data")
    async def tickers(
        self,
        pool: NamedDependency[Pool],
        catalog: NamedDependency[Catalog],
        all_tickers: NamedDependency[Shared[list[Ticker]]],
        symbols: Annotated[
            str | None,
            QueryParameter(description="comma-separated, e.g. BTCUSDT,ETHUSDT", max_length=4096),
        ] = None,
    ) -> list[Ticker]:
        if symbols is None:
            # Every symbol's day is one query each: computed at most once per few seconds.
            return await all_tickers.get(lambda: _tickers_of_all(pool))
        names = [s for s in symbols.split(",") if s.strip()]
        if not names:
            raise InvalidParameter("symbols", "name at least one symbol")
        if len(names) > MAX_SYMBOLS:
            raise InvalidParameter("symbols", f"at most {MAX_SYMBOLS} symbols")
        checked = [await checked_symbol(catalog, name, "symbols") for name in names]
        return await _tickers(pool, list(dict.fromkeys(checked)))


async def _tickers_of_all(pool: Pool) -> list[Ticker]:
    async with pool.connection() as conn:
        wanted = [info.symbol for info in await symbols_with_data(conn)]
    return await _tickers(pool, wanted)


async def _tickers(pool: Pool, wanted: list[str]) -> list[Ticker]:
    out = []
    async with pool.connection() as conn:
        for symbol in wanted:
            day = await last_day(conn, symbol)
            if day is not None:
                out.append(ticker(symbol, day))
    return out
