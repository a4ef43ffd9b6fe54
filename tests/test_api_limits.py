"""Bounded work under hostile input: unknown symbols answered from a short-lived negative cache,
a WebSocket flooding messages closed (1008), sockets per address capped (1013), REST requests in
progress capped (503 + Retry-After), and history recomputing an empty level only over the buckets
its page needs."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.rows import TupleRow
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from cryptochart.api import history
from cryptochart.api.config import ApiConfig
from cryptochart.api.intervals import INTERVALS
from cryptochart.core.database import Conn
from cryptochart.core.settings import Settings, SettingsError
from tests.api_server import (
    TEST_CONFIG,
    ApiServer,
    insert_seconds,
    kline,
    materialise,
    next_frame,
    produce,
    producer,
    send,
    serve,
    truth,
    wait_for,
)

T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z
MINUTE = 60_000
DAY = 86_400_000

LIMITS = replace(
    TEST_CONFIG,
    ws_messages_per_second=5,
    ws_per_address=2,
    max_requests_in_progress=1,
    unknown_symbol_ttl=1.0,
    query_timeout=60.0,  # a request held on a lock waits for it
)


@pytest.fixture(scope="module")
def api(settings: Settings) -> Iterator[ApiServer]:
    with serve(settings, LIMITS) as server:
        yield server


def klines_status(api: ApiServer, symbol: str) -> int:
    params: dict[str, str | int] = {"symbol": symbol, "interval": "1m", "limit": 1}
    return httpx.get(f"{api.url}/api/v1/klines", params=params, timeout=30).status_code


def minutes(symbol: str, start: int, count: int) -> list[Any]:
    return [
        kline(symbol, start + i * 1000, "10.5", "11.25", "9.75", f"{10 + i % 7}.5")
        for i in range(count)
    ]


# --- settings ----------------------------------------------------------------------------------


def test_each_cap_is_a_typed_setting_and_a_bad_value_is_one_line() -> None:
    config = ApiConfig.from_env(
        {
            "CRYPTOCHART_API_WS_MESSAGES_PER_SECOND": "7",
            "CRYPTOCHART_API_WS_PER_ADDRESS": "3",
            "CRYPTOCHART_API_MAX_REQUESTS_IN_PROGRESS": "9",
            "CRYPTOCHART_API_UNKNOWN_SYMBOL_TTL": "2.5",
        }
    )
    assert (config.ws_messages_per_second, config.ws_per_address) == (7, 3)
    assert (config.max_requests_in_progress, config.unknown_symbol_ttl) == (9, 2.5)
    with pytest.raises(SettingsError, match="CRYPTOCHART_API_WS_PER_ADDRESS='0'"):
        ApiConfig.from_env({"CRYPTOCHART_API_WS_PER_ADDRESS": "0"})
    with pytest.raises(SettingsError, match="CRYPTOCHART_API_UNKNOWN_SYMBOL_TTL='soon'"):
        ApiConfig.from_env({"CRYPTOCHART_API_UNKNOWN_SYMBOL_TTL": "soon"})


# --- unknown symbols ---------------------------------------------------------------------------


def test_an_unknown_symbol_is_remembered_briefly_and_forgotten_when_it_arrives(
    api: ApiServer, settings: Settings, db: Conn
) -> None:
    assert klines_status(api, "LIMNEG1USDT") == 400
    # Stored behind the API's back: the negative answer stands until its TTL is over...
    insert_seconds(db, minutes("LIMNEG1USDT", T0, 3))
    assert klines_status(api, "LIMNEG1USDT") == 400
    # ...and then the database is asked again.
    wait_for(lambda: klines_status(api, "LIMNEG1USDT") == 200, 30, "the TTL to lapse")

    # A symbol arriving on Kafka is known at once, whatever was remembered.
    assert klines_status(api, "LIMNEG2USDT") == 400
    with_ttl = replace(LIMITS, unknown_symbol_ttl=3600.0)
    with serve(settings, with_ttl) as long_memory:
        assert klines_status(long_memory, "LIMNEG2USDT") == 400
        insert_seconds(db, minutes("LIMNEG2USDT", T0, 3))
        assert klines_status(long_memory, "LIMNEG2USDT") == 400  # remembered for an hour
        sender = producer(settings)
        produce(sender, settings, minutes("LIMNEG2USDT", T0 + 3000, 1))
        wait_for(lambda: klines_status(long_memory, "LIMNEG2USDT") == 200, 30, "Kafka to name it")


# --- WebSocket ---------------------------------------------------------------------------------


async def test_a_socket_flooding_messages_is_closed_with_1008(api: ApiServer) -> None:
    async with connect(api.ws_url) as ws:
        await next_frame(ws, lambda f: f["type"] == "status")
        for _ in range(LIMITS.ws_messages_per_second * 4):
            try:
                await send(ws, {"op": "ping"})
            except ConnectionClosed:
                break
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(15):
                while True:
                    await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008
    assert closed.value.rcvd.reason == "over 5 messages per second"


async def test_a_socket_within_the_rate_stays_open(api: ApiServer) -> None:
    async with connect(api.ws_url) as ws:
        await next_frame(ws, lambda f: f["type"] == "status")
        for _ in range(LIMITS.ws_messages_per_second):
            await send(ws, {"op": "ping"})
        for _ in range(LIMITS.ws_messages_per_second):
            await next_frame(ws, lambda f: f["type"] == "pong")


async def test_sockets_per_address_are_capped_with_1013(api: ApiServer) -> None:
    async with connect(api.ws_url) as first, connect(api.ws_url) as second:
        for ws in (first, second):
            await next_frame(ws, lambda f: f["type"] == "status")
        async with connect(api.ws_url) as third:
            with pytest.raises(ConnectionClosed) as closed:
                async with asyncio.timeout(15):
                    await third.recv()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1013
        assert closed.value.rcvd.reason == "at most 2 connections per address"
    # Both closed: their places are free again (once the server has seen them go).
    async with asyncio.timeout(30):
        while True:
            async with connect(api.ws_url) as again:
                try:
                    frame = await next_frame(again, lambda f: f["type"] == "status")
                    assert frame["type"] == "status"
                    return
                except ConnectionClosed:
                    await asyncio.sleep(0.05)  # the server has not released them yet


# --- REST requests in progress -----------------------------------------------------------------


def test_requests_past_the_cap_get_503_with_retry_after(
    api: ApiServer, settings: Settings, db: Conn
) -> None:
    insert_seconds(db, minutes("LIMBUSYUSDT", T0, 3))
    assert klines_status(api, "LIMBUSYUSDT") == 200
    with psycopg.connect(settings.database_url, autocommit=False) as locker:
        locker.execute("LOCK TABLE kline_1s IN ACCESS EXCLUSIVE MODE")
        with httpx.Client(base_url=api.url, timeout=60) as client:
            params: dict[str, str | int] = {"symbol": "LIMBUSYUSDT", "interval": "1s", "limit": 1}
            result: list[httpx.Response] = []

            def blocked() -> None:
                with httpx.Client(base_url=api.url, timeout=60) as other:
                    result.append(other.get("/api/v1/klines", params=params))

            thread = threading.Thread(target=blocked)
            thread.start()
            # The first request waits on the lock inside the database.
            wait_for(lambda: lock_waiters(db) >= 1, 30, "the first request to wait on the lock")
            busy = client.get("/api/v1/klines", params=params)
            assert busy.status_code == 503, busy.text
            assert busy.headers["retry-after"] == "1"
            assert "1 requests already" in busy.json()["detail"]
            # The cap is the API's, not a route's: another data route is refused as well.
            assert client.get("/api/v1/symbols").status_code == 503
            assert client.get("/health").status_code == 200  # outside the API's data routes
            locker.rollback()
            thread.join(60)
        assert result and result[0].status_code == 200, result
    assert klines_status(api, "LIMBUSYUSDT") == 200


def lock_waiters(db: Conn) -> int:
    row = db.execute(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    ).fetchone()
    return int(str(row[0])) if row else 0


# --- history over an empty or lagging level ----------------------------------------------------


class CountingCursor(psycopg.AsyncCursor[TupleRow]):
    """Counts the rows the database returned to the history code (real queries, real rows)."""

    fetched = 0

    async def fetchall(self) -> list[TupleRow]:
        out = await super().fetchall()
        CountingCursor.fetched += len(out)
        return out


def copy_seconds(db: Conn, symbol: str, start: int, count: int) -> None:
    insert_seconds(db, minutes(symbol, start, count))


async def test_history_folds_an_empty_level_only_over_the_page(
    settings: Settings, db: Conn
) -> None:
    symbol = "LIMHISTUSDT"
    hours = 3
    copy_seconds(db, symbol, T0, hours * 3600)  # three hours of 1s, no minute materialised
    copy_seconds(db, symbol, T0 + 10 * DAY, 180)  # three minutes ten days later
    expected = truth(db, symbol, "1m")
    one_minute = INTERVALS["1m"]
    async with await psycopg.AsyncConnection.connect(
        settings.database_url, autocommit=True, cursor_factory=CountingCursor
    ) as conn:

        async def page(**kwargs: Any) -> tuple[list[list[Any]], int]:
            CountingCursor.fetched = 0
            candles = await history.klines(conn, one_minute, symbol, **kwargs)
            return [[*r[:12]] for r in candles], CountingCursor.fetched

        newest, fetched = await page(start=None, end=None, limit=5)
        assert newest == [[*r] for r in expected[-5:]]  # 3 after the gap, 2 before it
        assert fetched <= 5 * 60 + 10, f"{fetched} rows read for 5 minutes"

        oldest, fetched = await page(start=T0, end=None, limit=5)
        assert oldest == [[*r] for r in expected[:5]]
        assert fetched <= 5 * 60 + 10, f"{fetched} rows read for 5 minutes"

        across, _ = await page(start=T0 + (hours * 60 - 2) * MINUTE, end=None, limit=4)
        assert across == [[*r] for r in expected[hours * 60 - 2 : hours * 60 + 2]]

        # Materialised up to an hour in: the lagging rest folds only what the page needs.
        materialise(db, symbol, "1m", T0 + 3600_000)
        lagging, fetched = await page(start=None, end=T0 + 2 * 3600_000, limit=5)
        assert lagging == [[*r] for r in expected[116:121]]
        assert fetched <= 6 * 60 + 10, f"{fetched} rows read for 5 minutes"
