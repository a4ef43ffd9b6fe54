"""Binance's public REST market data: the reachability ping, closed klines over a time range and
the symbols' tick and lot sizes (``exchangeInfo``).

Used by the live source to fill gaps after reconnects and by ``backfill`` to load history. Rate
limits are honoured: an HTTP 429 or 418 pauses every request of this client for ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from types import TracebackType
from typing import Self

import httpx
import msgspec

from cryptochart.core.backoff import Backoff
from cryptochart.core.instrument import Instrument
from cryptochart.core.kline import InvalidKline, Kline
from cryptochart.ingest.sources.base import Rejected
from cryptochart.ingest.sources.binance.exchange_info import (
    UnreadableExchangeInfo,
    instruments_from_exchange_info,
)
from cryptochart.ingest.sources.binance.messages import (
    INTERVAL_MS,
    decode_rest_page,
    kline_from_rest_row,
)
from cryptochart.ingest.sources.rejections import Rejections

log = logging.getLogger(__name__)

MAX_KLINES_PER_REQUEST = 1000
_RATE_LIMITED = (429, 418)  # 418: the IP is banned for a while after ignoring 429s


class BinanceRestError(RuntimeError):
    """A REST request failed for good: a client error, or retries ran out."""


class BinanceRest:
    """A client of ``<base_url>/api/v3``; use as an async context manager or call :meth:`aclose`.

    ``sleep`` is how the client waits (tests pass a recorder); ``max_concurrent`` bounds requests
    in flight, so a thousand symbols repairing at once queue instead of tripping the rate limit.
    """

    def __init__(
        self,
        base_url: str,
        *,
        client: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
        max_attempts: int = 8,
        max_concurrent: int = 4,
        backoff: Backoff | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rejections: Rejections | None = None,
    ) -> None:
        self._client = client or httpx.AsyncClient(base_url=base_url, timeout=timeout)
        self._owns_client = client is None
        self._max_attempts = max_attempts
        self._in_flight = asyncio.Semaphore(max_concurrent)
        self._backoff = backoff or Backoff(initial=0.5, maximum=30.0)
        self._sleep = sleep
        self._rejections = rejections or Rejections("binance", log)
        self._paused_until = 0.0

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def ping(self) -> None:
        """Return if ``/api/v3/ping`` answers; raise httpx.HTTPError otherwise (no retries)."""
        response = await self._client.get("/api/v3/ping")
        response.raise_for_status()

    async def instruments(self, symbols: Collection[str]) -> list[Instrument]:
        """The tick and lot size of those of ``symbols`` Binance lists.

        One request for every symbol (``/api/v3/exchangeInfo`` without parameters, weight 20):
        asking for a list instead would fail whole for one unlisted name.
        """
        response = await self._get("/api/v3/exchangeInfo", {})
        try:
            return instruments_from_exchange_info(response.content, symbols)
        except UnreadableExchangeInfo as exc:
            raise BinanceRestError(f"exchangeInfo: unreadable answer: {exc}") from None

    async def klines(
        self, symbol: str, start_ms: int, end_ms: int, interval: str = "1s"
    ) -> AsyncIterator[Kline | Rejected]:
        """Every kline of ``symbol`` opening in [start_ms, end_ms), in order, one page at a time.

        ``end_ms`` should not pass the current time: the kline containing "now" is still open.
        Rows that do not parse are yielded as :class:`Rejected`; a failed request raises
        :class:`BinanceRestError`.
        """
        step = INTERVAL_MS[interval]
        cursor = start_ms
        while cursor < end_ms:
            params: dict[str, str | int] = {
                "symbol": symbol,
                "interval": interval,
                "startTime": cursor,
                "endTime": end_ms - 1,
                "limit": MAX_KLINES_PER_REQUEST,
            }
            response = await self._get("/api/v3/klines", params)
            try:
                rows = decode_rest_page(response.content)
            except InvalidKline as exc:
                raise BinanceRestError(f"klines {symbol}: unreadable answer: {exc}") from None
            next_cursor = cursor
            for row in rows:
                try:
                    kline = kline_from_rest_row(symbol, row, interval)
                except InvalidKline as exc:
                    yield self._rejections.record(exc, msgspec.json.encode(row))
                    continue
                if cursor <= kline.open_time < end_ms:
                    yield kline
                    next_cursor = kline.open_time + step
            if len(rows) < MAX_KLINES_PER_REQUEST or next_cursor == cursor:
                return
            cursor = next_cursor

    async def _get(self, path: str, params: dict[str, str | int]) -> httpx.Response:
        for attempt in range(1, self._max_attempts + 1):
            await self._wait_out_pause()
            try:
                async with self._in_flight:
                    response = await self._client.get(path, params=params)
            except httpx.TransportError as exc:
                failure = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code in _RATE_LIMITED:
                    self._pause(response, attempt)
                    continue
                if response.status_code < 400:
                    self._backoff.reset()
                    return response
                if response.status_code < 500:
                    raise BinanceRestError(f"GET {path}: {response.status_code} {response.text}")
                failure = f"HTTP {response.status_code}"
            delay = self._backoff.next_delay()
            log.warning(
                "binance REST: GET %s failed (%s), attempt %d, retrying in %.1fs",
                path,
                failure,
                attempt,
                delay,
            )
            await self._sleep(delay)
        raise BinanceRestError(f"GET {path}: no answer after {self._max_attempts} attempts")

    def _pause(self, response: httpx.Response, attempt: int) -> None:
        wait = _retry_after(response) or self._backoff.next_delay()
        self._paused_until = max(self._paused_until, time.monotonic() + wait)
        log.warning(
            "binance REST: HTTP %d (rate limit), attempt %d, pausing requests for %.1fs",
            response.status_code,
            attempt,
            wait,
        )

    async def _wait_out_pause(self) -> None:
        until = self._paused_until
        wait = until - time.monotonic()
        if wait > 0:
            await self._sleep(wait)
            if self._paused_until == until:
                self._paused_until = 0.0


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: Binance sends seconds, so fall back to backoff
