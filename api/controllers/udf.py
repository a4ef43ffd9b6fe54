"""``/udf/*``: the candles as a TradingView UDF datafeed (config, symbols, search, history, time).

Errors are UDF's own shape, ``{"s":"error","errmsg":"<parameter>: <reason>"}``, with a 400.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.exceptions import ValidationException
from litestar.params import QueryParameter
from litestar.status_codes import HTTP_400_BAD_REQUEST
from litestar.types import ExceptionHandlersMap

from cryptochart.api import udf
from cryptochart.api.catalog import Catalog, checked_symbol, symbols_with_data
from cryptochart.api.errors import InvalidParameter, validation_failed
from cryptochart.api.history import MAX_TIME
from cryptochart.api.pool import Pool

MAX_SECONDS = MAX_TIME // 1000
DEFAULT_SEARCH_LIMIT = 30
MAX_SEARCH_LIMIT = 1000
JSON = "application/json"


def _error(parameter: str | None, detail: str) -> Response[bytes]:
    body = {"s": "error", "errmsg": detail}
    if parameter is not None:
        body["parameter"] = parameter
    return Response(udf.encode(body), status_code=HTTP_400_BAD_REQUEST, media_type=JSON)


def _invalid(_: Request[Any, Any, Any], exc: InvalidParameter) -> Response[bytes]:
    return _error(exc.parameter, str(exc))


def _not_valid(request: Request[Any, Any, Any], exc: ValidationException) -> Response[bytes]:
    """Litestar's own parameter checks, in UDF's shape, naming the parameter."""
    answer = validation_failed(request, exc).content
    return _error(answer.get("parameter"), str(answer["detail"]))


def _json(answer: object) -> Response[bytes]:
    return Response(udf.encode(answer), media_type=JSON)


def _seconds(name: str, role: str) -> Any:
    return QueryParameter(name=name, ge=0, le=MAX_SECONDS, description=f"Unix seconds: {role}")


async def _symbol(catalog: Catalog, raw: str) -> str:
    """A known symbol from UDF's ``symbol`` (``BTCUSDT`` or ``cryptochart:BTCUSDT``)."""
    return await checked_symbol(catalog, raw.rpartition(":")[2])


class UdfController(Controller):
    path = "/udf"
    tags = ("TradingView UDF",)
    exception_handlers: ExceptionHandlersMap | None = {  # noqa: RUF012 (Litestar's own layer)
        InvalidParameter: _invalid,
        ValidationException: _not_valid,
    }

    @get("/config", summary="What this datafeed supports")
    async def config(self) -> Response[bytes]:
        return _json(udf.config())

    @get("/time", summary="Server time, Unix seconds, as plain text")
    async def time(self) -> Response[str]:
        return Response(str(int(time.time())), media_type="text/plain")

    @get("/symbols", summary="One symbol's LibrarySymbolInfo (pricescale from its tick size)")
    async def symbols(
        self,
        pool: NamedDependency[Pool],
        catalog: NamedDependency[Catalog],
        symbol: Annotated[str, QueryParameter(description="e.g. BTCUSDT", max_length=64)],
    ) -> Response[bytes]:
        name = await _symbol(catalog, symbol)
        async with pool.connection() as conn:
            steps = await udf.precision(conn, name)
        return _json(udf.symbol_info(name, steps))

    @get("/search", summary="Symbols with data whose name contains the query")
    async def search(
        self,
        pool: NamedDependency[Pool],
        text: Annotated[
            str, QueryParameter(name="query", description="part of a symbol", max_length=64)
        ] = "",
        type_: Annotated[str, QueryParameter(name="type", max_length=64)] = "",
        exchange: Annotated[str, QueryParameter(max_length=64)] = "",
        limit: Annotated[
            int, QueryParameter(ge=1, le=MAX_SEARCH_LIMIT, description="results at most")
        ] = DEFAULT_SEARCH_LIMIT,
    ) -> Response[bytes]:
        if type_ not in ("", "crypto") or exchange not in ("", udf.EXCHANGE):
            return _json([])
        async with pool.connection() as conn:
            listed = await symbols_with_data(conn)
        wanted = text.strip().upper()
        found = [udf.search_result(i.symbol) for i in listed if wanted in i.symbol]
        return _json(found[:limit])

    @get(
        "/history",
        summary="Bars opening in [from, to), or the newest countback bars before to",
        description=(
            "`from` inclusive, `to` exclusive (Unix seconds). With `countback`, the newest "
            "`countback` bars opening before `to`, wherever `from` is. Ascending. An empty range "
            'is `{"s":"no_data"}`, with `nextTime` (the newest bar before `from`) when older '
            "data exists."
        ),
    )
    async def history(
        self,
        pool: NamedDependency[Pool],
        catalog: NamedDependency[Catalog],
        symbol: Annotated[str, QueryParameter(description="e.g. BTCUSDT", max_length=64)],
        resolution: Annotated[str, QueryParameter(description="1S 1 5 15 60 1D", max_length=8)],
        from_: Annotated[int, _seconds("from", "the first bar's time, inclusive")],
        to: Annotated[int, _seconds("to", "bars open before it")],
        countback: Annotated[
            int | None, QueryParameter(ge=1, le=udf.MAX_BARS, description="bars wanted")
        ] = None,
    ) -> Response[bytes]:
        interval = udf.interval_of(resolution)
        name = await _symbol(catalog, symbol)
        if from_ > to:
            raise InvalidParameter("from", "must not be after to")
        async with pool.connection() as conn:
            steps = await udf.precision(conn, name)
            answer = await udf.bars(conn, interval, name, from_, to, countback, steps)
        return _json(answer)
