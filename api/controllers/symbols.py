"""``/api/v1/symbols``: the symbols with stored candles."""

from __future__ import annotations

from litestar import Controller, get
from litestar.di import NamedDependency

from cryptochart.api.catalog import SymbolInfo, symbols_with_data
from cryptochart.api.pool import Pool


class SymbolsController(Controller):
    path = "/api/v1/symbols"
    tags = ("market data",)

    @get(summary="Symbols with data: latest price and the span of their history (ms)")
    async def symbols(self, pool: NamedDependency[Pool]) -> list[SymbolInfo]:
        async with pool.connection() as conn:
            return await symbols_with_data(conn)
