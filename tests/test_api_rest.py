"""The REST API against the session's PostgreSQL: Binance's klines shape and paging, exact
decimals, candles complete up to the newest 1s kline, 400s naming the parameter, the schema,
health, readiness, metrics, rate limits, CORS and the frontend page."""

from __future__ import annotations

import gc
import re
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from litestar.testing import TestClient
from psycopg import sql

from cryptochart.api import history
from cryptochart.api.app import create_app
from cryptochart.api.candles import fold
from cryptochart.api.catalog import HAS_DATA_QUERY, SYMBOLS_QUERY
from cryptochart.api.cli import freeze_start_up_heap
from cryptochart.api.intervals import INTERVALS
from cryptochart.api.limits import RequestRate
from cryptochart.core.database import Conn
from cryptochart.core.kline import Kline
from cryptochart.core.settings import Settings
from tests.api_server import (
    TEST_CONFIG,
    ApiServer,
    insert_seconds,
    kline,
    materialise,
    serve,
    truth,
)

T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z
MINUTE = 60_000
HOUR = 3_600_000


@pytest.fixture(scope="module")
def api(settings: Settings) -> Iterator[ApiServer]:
    with serve(settings) as server:
        yield server


@pytest.fixture(scope="module")
def http(api: ApiServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.url, timeout=30) as client:
        yield client


def get_klines(http: httpx.Client, **params: Any) -> list[list[Any]]:
    response = http.get("/api/v1/klines", params=params)
    assert response.status_code == 200, response.text
    rows: list[list[Any]] = response.json()
    return rows


def seconds_of(symbol: str, start: int, count: int, step: int = 1_000) -> list[Kline]:
    """``count`` klines with wandering prices and 8-decimal volumes, ``step`` ms apart."""
    out = []
    for i in range(count):
        base = Decimal(20_000) + Decimal((i * 37) % 101) / 4
        out.append(
            kline(
                symbol,
                start + i * step,
                f"{base:.8f}",
                f"{base + Decimal('7.25'):.8f}",
                f"{base - Decimal('3.5'):.8f}",
                f"{base + Decimal((i % 5) - 2):.8f}",
                f"{Decimal(i % 13 + 1) / 1000:.8f}",
                trades=i % 7 + 1,
            )
        )
    return out


# --- shape, decimals, paging ------------------------------------------------------------------


def test_1s_rows_are_binance_shaped_with_exact_decimals(db: Conn, http: httpx.Client) -> None:
    symbol = "RESTDECUSDT"
    klines = [
        kline(symbol, T0, "0.00000010", "0.00000012", "0.00000009", "0.00000011", "123456.1"),
        kline(symbol, T0 + 1000, "65000.10000000", "65010", "64990.5", "65001.00", "0.00100000"),
        kline(symbol, T0 + 2000, "1E-8", "0.00000003", "0.00000001", "0.00000002", "0E-8"),
    ]
    insert_seconds(db, klines)
    rows = get_klines(http, symbol=symbol, interval="1s")
    assert rows == truth(db, symbol, "1s")
    first = klines[0]
    assert rows[0] == [
        T0,
        "0.00000010",
        "0.00000012",
        "0.00000009",
        "0.00000011",
        "123456.1",
        T0 + 999,
        format(first.quote_volume, "f"),
        3,
        format(first.taker_buy_base_volume, "f"),
        format(first.taker_buy_quote_volume, "f"),
        "0",
    ]
    assert rows[1][1:6] == ["65000.10000000", "65010", "64990.5", "65001.00", "0.00100000"]
    assert rows[2][1] == "0.00000001" and rows[2][5] == "0.00000000"


async def test_page_rows_are_the_decimal_paths_digits(db: Conn, settings: Settings) -> None:
    """A page's materialised rows come as PostgreSQL's text of the numerics and epoch ms: the
    same values, digit for digit and type for type, as the row of the Decimal candle read back
    (trailing zeros, 1E-8, zero, a 26-digit value), on every level."""
    symbol = "RESTTEXTUSDT"
    klines = [
        kline(symbol, T0, "0.00000010", "0.00000012", "0.00000009", "0.00000011", "123456.1"),
        kline(symbol, T0 + 1000, "65000.10000000", "65010", "64990.5", "65001.00", "0.00100"),
        kline(symbol, T0 + 2000, "1E-8", "0.00000003", "0.00000001", "0.00000002", "0E-8"),
        kline(symbol, T0 + HOUR, "12345678901234567890.123456", "1E+20", "1", "2", "100"),
    ]
    insert_seconds(db, klines)
    for name in ("1m", "5m", "15m", "1h", "1d"):
        materialise(db, symbol, name, T0 + 2 * 86_400_000)
    async with await psycopg.AsyncConnection.connect(settings.api_dsn) as conn:
        for name, interval in INTERVALS.items():
            args = (conn, interval, symbol, 0, history.END_OF_TIME)
            as_text = await history.page_rows(*args)
            from_decimals = [history.page_row(c) for c in await history.rows(*args)]
            assert len(as_text) == (len(klines) if name == "1s" else 2 if name != "1d" else 1)
            assert [[type(v) for v in r] for r in as_text] == [
                [type(v) for v in r] for r in from_decimals
            ], name
            assert as_text == from_decimals, name


async def test_the_sql_fold_is_the_python_fold(db: Conn, settings: Settings) -> None:
    """A forming candle folded from 1s klines in SQL equals, digit for digit and field for
    field, the fold of the same 1s candles in Python (trailing zeros, 1E-8, zero, 26 digits,
    seconds missing, two buckets)."""
    symbol = "RESTFOLDUSDT"
    klines = [
        kline(symbol, T0, "0.00000010", "0.00000012", "0.00000009", "0.00000011", "123456.1"),
        kline(symbol, T0 + 1000, "65000.10000000", "65010", "64990.5", "65001.00", "0.00100"),
        kline(symbol, T0 + 7000, "1E-8", "0.00000003", "0.00000001", "0.00000002", "0E-8"),
        kline(symbol, T0 + 61_000, "12345678901234567890.123456", "1E+20", "1", "2", "100"),
        kline(symbol, T0 + 119_000, "3.5", "4", "3.25", "3.75", "0.5"),
    ]
    insert_seconds(db, klines)
    one_second, one_minute = INTERVALS["1s"], INTERVALS["1m"]
    async with await psycopg.AsyncConnection.connect(settings.api_dsn) as conn:
        for lo, hi in ((T0, T0 + 120_000), (T0, T0 + 60_000), (T0 + 60_000, T0 + 180_000)):
            in_sql = await history.folded(conn, one_minute, symbol, lo, hi)
            seconds = await history.rows(conn, one_second, symbol, lo, hi)
            assert in_sql == fold(seconds, one_minute), (lo, hi)
            assert [c.row() for c in in_sql] == [c.row() for c in fold(seconds, one_minute)]
        both = await history.folded(conn, one_minute, symbol, T0, T0 + 120_000)
    assert [(c.open_time, c.seconds, c.last_second) for c in both] == [
        (T0, 3, T0 + 7000),
        (T0 + 60_000, 2, T0 + 119_000),
    ]


def test_paging_follows_binance(db: Conn, http: httpx.Client) -> None:
    symbol = "RESTPAGEUSDT"
    insert_seconds(db, seconds_of(symbol, T0, 30))
    every = truth(db, symbol, "1s")
    times = [row[0] for row in every]
    t = [T0 + i * 1000 for i in range(30)]
    assert times == t

    def opens(**params: Any) -> list[int]:
        return [row[0] for row in get_klines(http, symbol=symbol, interval="1s", **params)]

    assert opens() == t  # neither: the newest `limit` (500 covers all)
    assert opens(limit=10) == t[20:]
    assert opens(startTime=t[5], limit=10) == t[5:15]
    assert opens(startTime=t[5] + 1, limit=3) == t[6:9]  # a start inside a candle skips it
    assert opens(endTime=t[12], limit=5) == t[8:13]  # only endTime: the newest before it
    assert opens(endTime=t[12] + 500, limit=2) == t[11:13]
    assert opens(startTime=t[5], endTime=t[7]) == t[5:8]
    assert opens(startTime=t[7], endTime=t[7]) == [t[7]]
    assert opens(startTime=t[29] + 1) == []
    assert opens(endTime=t[0] - 1) == []
    pages: list[list[Any]] = []
    start = 0
    while page := get_klines(http, symbol=symbol, interval="1s", startTime=start, limit=7):
        pages += page
        start = page[-1][0] + 1
    assert pages == every
    pages = []
    end = None
    while page := get_klines(
        http, symbol=symbol, interval="1s", limit=4, **({} if end is None else {"endTime": end})
    ):
        pages = page + pages
        end = page[0][0] - 1
    assert pages == every


def test_default_and_largest_limits(db: Conn, http: httpx.Client) -> None:
    symbol = "RESTLIMITUSDT"
    insert_seconds(db, seconds_of(symbol, T0, 1_100))
    assert len(get_klines(http, symbol=symbol, interval="1s")) == 500
    rows = get_klines(http, symbol=symbol, interval="1s", limit=1000)
    assert [r[0] for r in rows] == [T0 + i * 1000 for i in range(100, 1_100)]


# --- candles complete up to the newest second -------------------------------------------------


def test_every_interval_is_complete_up_to_the_newest_second(db: Conn, http: httpx.Client) -> None:
    """The minute job has run at different points for each level; every answer still equals
    a roll-up straight from kline_1s, newest partial candles included."""
    symbol = "RESTTAILUSDT"
    start = T0 + 55 * MINUTE  # 00:55, so the data crosses 5m, 15m, 1h boundaries
    klines = [k for k in seconds_of(symbol, start, 630) if k.open_time % 7_000]  # with gaps
    insert_seconds(db, klines)
    materialise(db, symbol, "1m", T0 + HOUR + 3 * MINUTE + 20_000)  # 01:03 partial, 01:04+ none
    materialise(db, symbol, "5m", T0 + HOUR)  # up to the 00:55 bucket
    # 15m, 1h and 1d have nothing materialised: folded from the finer levels entirely.
    for name in INTERVALS:
        expected = truth(db, symbol, name)
        assert len(expected) < 1000
        assert get_klines(http, symbol=symbol, interval=name, limit=1000) == expected, name
        assert get_klines(http, symbol=symbol, interval=name, limit=2) == expected[-2:], name
        first = expected[0][0]
        assert (
            get_klines(http, symbol=symbol, interval=name, startTime=first, limit=3)
            == (expected[:3])
        ), name
    one_minute = get_klines(http, symbol=symbol, interval="1m")
    assert one_minute[-1][0] == T0 + HOUR + 5 * MINUTE  # 01:05, half a minute old
    # Paging 1m across the materialised/recomputed boundary, both directions.
    expected = truth(db, symbol, "1m")
    pages: list[list[Any]] = []
    cursor = 0
    while page := get_klines(http, symbol=symbol, interval="1m", startTime=cursor, limit=3):
        pages += page
        cursor = page[-1][0] + 1
    assert pages == expected
    back = get_klines(http, symbol=symbol, interval="1m", endTime=T0 + HOUR + 4 * MINUTE, limit=3)
    assert back == expected[-4:-1]


def test_materialised_rows_without_seconds_still_show(db: Conn, http: httpx.Client) -> None:
    """Past the 1s retention only the aggregates hold a symbol's candles."""
    symbol = "RESTOLDUSDT"
    insert_seconds(db, seconds_of(symbol, T0, 300, step=2_000))
    materialise(db, symbol, "1m", T0 + HOUR)
    expected_1m, expected_5m = truth(db, symbol, "1m"), truth(db, symbol, "5m")
    db.execute("DELETE FROM kline_1s WHERE symbol = %s", (symbol,))
    assert get_klines(http, symbol=symbol, interval="1m") == expected_1m
    assert get_klines(http, symbol=symbol, interval="5m") == expected_5m
    assert get_klines(http, symbol=symbol, interval="1s") == []


# --- symbols and tickers ----------------------------------------------------------------------


def test_symbols_list_price_and_span(db: Conn, http: httpx.Client) -> None:
    symbol = "RESTSYMUSDT"
    klines = seconds_of(symbol, T0 + 3 * HOUR, 90)
    insert_seconds(db, klines)
    materialise(db, symbol, "1m", T0 + 3 * HOUR + MINUTE)
    response = http.get("/api/v1/symbols")
    assert response.status_code == 200
    listed = {row["symbol"]: row for row in response.json()}
    assert listed[symbol] == {
        "symbol": symbol,
        "price": str(klines[-1].close),
        "firstTime": T0 + 3 * HOUR,
        "lastTime": klines[-1].open_time,
        "tickSize": None,  # until its source declares it
        "lotSize": None,
    }


def test_ticker_is_a_rolling_day(db: Conn, http: httpx.Client) -> None:
    symbol = "RESTTICKUSDT"
    # One kline every 5 minutes for 26 hours, then a dense last minute.
    sparse = seconds_of(symbol, T0, 26 * 12, step=5 * MINUTE)
    newest = sparse[-1].open_time
    dense = seconds_of(symbol, newest + 1000, 50)
    insert_seconds(db, sparse + dense)
    materialise(db, symbol, "1m", newest)
    materialise(db, symbol, "5m", newest - HOUR)
    materialise(db, symbol, "15m", newest - 2 * HOUR)
    materialise(db, symbol, "1h", newest - 3 * HOUR)
    last = dense[-1]
    window_start = -(-(last.open_time + 1000 - 24 * HOUR) // MINUTE) * MINUTE
    inside = [k for k in sparse + dense if k.open_time >= window_start]
    response = http.get("/api/v1/ticker", params={"symbols": f"{symbol},{symbol.lower()}"})
    assert response.status_code == 200, response.text
    (ticker,) = response.json()
    open_ = inside[0].open
    assert ticker == {
        "symbol": symbol,
        "lastPrice": str(last.close),
        "priceChange": str(last.close - open_),
        "priceChangePercent": f"{(last.close - open_) * 100 / open_:.3f}",
        "highPrice": str(max(k.high for k in inside)),
        "lowPrice": str(min(k.low for k in inside)),
        "volume": str(sum(k.volume for k in inside)),
        "openTime": window_start,
        "closeTime": last.close_time,
    }
    everyone = http.get("/api/v1/ticker")
    assert everyone.status_code == 200
    assert symbol in {t["symbol"] for t in everyone.json()}


# --- bad input --------------------------------------------------------------------------------

BAD = [
    ({"interval": "1m"}, "symbol"),
    ({"symbol": "NOSUCHUSDT", "interval": "1m"}, "symbol"),
    ({"symbol": "BAD-SYMBOL", "interval": "1m"}, "symbol"),
    ({"symbol": "RESTBADUSDT"}, "interval"),
    ({"symbol": "RESTBADUSDT", "interval": "2m"}, "interval"),
    ({"symbol": "RESTBADUSDT", "interval": "1m", "startTime": 5, "endTime": 4}, "startTime"),
    ({"symbol": "RESTBADUSDT", "interval": "1m", "startTime": "yesterday"}, "startTime"),
    ({"symbol": "RESTBADUSDT", "interval": "1m", "endTime": "1.5"}, "endTime"),
    ({"symbol": "RESTBADUSDT", "interval": "1m", "startTime": -1}, "startTime"),
    ({"symbol": "RESTBADUSDT", "interval": "1m", "endTime": 10**20}, "endTime"),
    ({"symbol": "RESTBADUSDT", "interval": "1m", "limit": 0}, "limit"),
    ({"symbol": "RESTBADUSDT", "interval": "1m", "limit": 1001}, "limit"),
    ({"symbol": "RESTBADUSDT", "interval": "1m", "limit": "many"}, "limit"),
    ({"symbol": "RESTBADUSDT", "interval": "1m", "withSeconds": "maybe"}, "withSeconds"),
    ({"symbol": "RESTBADUSDT", "interval": "1m", "withStats": "maybe"}, "withStats"),
    ({"symbol": "RESTBADUSDT", "interval": "1m", "withStats": "2"}, "withStats"),
]


@pytest.mark.parametrize(("params", "parameter"), BAD)
def test_bad_klines_parameters_are_400_naming_it(
    db: Conn, http: httpx.Client, params: dict[str, Any], parameter: str
) -> None:
    if db.execute("SELECT 1 FROM kline_1s WHERE symbol = 'RESTBADUSDT'").fetchone() is None:
        insert_seconds(db, seconds_of("RESTBADUSDT", T0, 1))
    response = http.get("/api/v1/klines", params=params)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["parameter"] == parameter
    assert body["detail"].startswith(f"{parameter}: ")


def test_bad_ticker_symbols_are_400(http: httpx.Client) -> None:
    for value in ["NOSUCHUSDT", ",", "A B"]:
        response = http.get("/api/v1/ticker", params={"symbols": value})
        assert response.status_code == 400, value
        assert response.json()["parameter"] == "symbols"


SYMBOLS = st.sampled_from(["RESTPAGEUSDT", "restpageusdt", "NOSUCH", "", "ÄÖ", "A" * 70])
INTEGERS = st.integers(min_value=-(2**70), max_value=2**70)
TIMES = st.one_of(st.none(), INTEGERS, st.integers(T0 - 10**6, T0 + 10**6), st.text(max_size=12))


@given(
    symbol=st.one_of(SYMBOLS, st.text(max_size=20)),
    interval=st.one_of(st.sampled_from([*INTERVALS, "1M", "", "1s "]), st.text(max_size=4)),
    start=TIMES,
    end=TIMES,
    limit=st.one_of(st.none(), st.integers(-5, 1_010), INTEGERS, st.text(max_size=6)),
)
@hypothesis_settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_no_query_makes_a_5xx(
    http: httpx.Client, symbol: str, interval: str, start: Any, end: Any, limit: Any
) -> None:
    params = {"symbol": symbol, "interval": interval}
    for key, value in (("startTime", start), ("endTime", end), ("limit", limit)):
        if value is not None:
            params[key] = str(value)
    response = http.get("/api/v1/klines", params=params)
    assert response.status_code in (200, 400), (params, response.text)
    body = response.json()
    if response.status_code == 400:
        assert body["detail"]


# --- service endpoints ------------------------------------------------------------------------


def test_schema_is_served(http: httpx.Client) -> None:
    assert http.get("/schema").status_code == 200
    schema = http.get("/schema/openapi.json").json()
    klines = schema["paths"]["/api/v1/klines"]["get"]
    names = {p["name"] for p in klines["parameters"]}
    assert names == {
        "symbol",
        "interval",
        "startTime",
        "endTime",
        "limit",
        "withSeconds",
        "withStats",
    }
    assert {"/api/v1/symbols", "/api/v1/ticker", "/api/v1/status"} <= set(schema["paths"])
    udf = {"/udf/config", "/udf/symbols", "/udf/search", "/udf/history", "/udf/time"}
    assert udf <= set(schema["paths"])


def test_health_ready_metrics_status(http: httpx.Client) -> None:
    assert http.get("/health").json() == {"status": "ok"}
    ready = http.get("/ready")
    assert ready.status_code == 200
    assert ready.json() == {"database": "ok", "kafka": "ok"}
    status = http.get("/api/v1/status").json()
    assert status["kafkaReady"] is True
    assert status["source"] in ("unknown", "sim", "binance", "replay")
    metrics = http.get("/metrics")
    assert metrics.status_code == 200
    for name in (
        "cryptochart_api_requests_total",
        "cryptochart_api_ws_clients",
        "cryptochart_api_frames_published_total",
        "cryptochart_api_consumer_lag",
    ):
        assert name in metrics.text, name


def test_serve_freezes_the_start_up_heap(http: httpx.Client) -> None:
    """What `cryptochart serve` does before it serves: the start-up heap frozen out of the
    garbage collector's passes, and how much on /metrics."""
    try:
        frozen = freeze_start_up_heap()
        # Frozen objects may be freed since (by other threads too): the count only falls.
        assert 0 < gc.get_freeze_count() <= frozen
        metrics = http.get("/metrics").text
        assert f"cryptochart_api_gc_frozen_objects {float(frozen)}" in metrics
    finally:
        gc.unfreeze()


def full_passes_timed(metrics: str) -> float:
    for line in metrics.splitlines():
        if line.startswith('cryptochart_api_gc_pause_seconds_count{generation="2"}'):
            return float(line.split()[-1])
    return 0.0


def test_the_garbage_collectors_passes_are_timed_on_metrics(http: httpx.Client) -> None:
    before = full_passes_timed(http.get("/metrics").text)
    gc.collect()
    after = http.get("/metrics").text
    assert full_passes_timed(after) >= before + 1
    assert 'cryptochart_api_gc_pause_seconds_bucket{generation="2",le="0.001"}' in after


def test_unreachable_services_make_ready_503_and_reads_503(settings: Settings) -> None:
    nowhere = replace(
        settings,
        api_database_url="postgresql://cryptochart_api@127.0.0.1:1/nowhere?connect_timeout=1",
        kafka_bootstrap="127.0.0.1:1",
    )
    config = replace(TEST_CONFIG, query_timeout=1.0)
    with TestClient(create_app(nowhere, config)) as client:
        assert client.get("/health").status_code == 200
        ready = client.get("/ready")
        assert ready.status_code == 503
        assert set(ready.json()) == {"database", "kafka"}
        assert ready.json()["database"] != "ok" and ready.json()["kafka"] != "ok"
        response = client.get("/api/v1/klines", params={"symbol": "BTCUSDT", "interval": "1m"})
        assert response.status_code == 503
        assert response.json()["detail"] == "the database is unavailable"


def test_rate_limit(settings: Settings) -> None:
    """Per address and minute over every route (the page and its files too), with the IETF
    draft's headers on each answer and Retry-After on the refusal; health checks not counted."""
    config = replace(TEST_CONFIG, rate_limit_per_minute=3)
    with TestClient(create_app(settings, config)) as client:
        answers = [client.get(path) for path in ("/api/v1/status", "/", "/api/v1/symbols")]
        assert [a.status_code for a in answers] == [200, 200, 200]
        assert [a.headers["ratelimit-remaining"] for a in answers] == ["2", "1", "0"]
        assert answers[0].headers["ratelimit-policy"] == "3; w=60"
        assert answers[0].headers["ratelimit-limit"] == "3"
        assert 0 < int(answers[0].headers["ratelimit-reset"]) <= 60
        refused = client.get("/api/v1/status")
        assert refused.status_code == 429
        assert 0 < int(refused.headers["retry-after"]) <= 60
        assert refused.json()["status_code"] == 429
        assert "at most 3 requests per 60 s" in refused.json()["detail"]
        assert client.get("/api/v1/klines", params={"symbol": "BTCUSDT"}).status_code == 429
        assert all(client.get("/health").status_code == 200 for _ in range(5))


def test_a_rate_window_opens_again_once_it_closes() -> None:
    now = [100.0]
    rate = RequestRate(2, window=60.0, clock=lambda: now[0])
    assert [rate.admit("a")[0] for _ in range(3)] == [True, True, False]
    assert rate.admit("b")[0]  # per address
    now[0] += 59.0
    allowed, headers = rate.admit("a")
    assert not allowed and dict(headers)[b"retry-after"] == b"1"
    now[0] += 1.0
    assert [rate.admit("a")[0] for _ in range(3)] == [True, True, False]


def test_cors_origins_are_configurable(settings: Settings) -> None:
    any_origin = create_app(settings, TEST_CONFIG)
    with TestClient(any_origin) as client:
        response = client.get("/health", headers={"Origin": "https://example.org"})
        assert response.headers["access-control-allow-origin"] == "*"
    listed = replace(TEST_CONFIG, cors_origins=("https://chart.example",))
    with TestClient(create_app(settings, listed)) as client:
        good = client.get("/health", headers={"Origin": "https://chart.example"})
        assert good.headers["access-control-allow-origin"] == "https://chart.example"
        bad = client.get("/health", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in bad.headers


def test_frontend_page(settings: Settings, tmp_path: Path) -> None:
    missing = TestClient(create_app(settings, replace(TEST_CONFIG, frontend_dir=tmp_path / "x")))
    page = missing.get("/")
    assert page.status_code == 200
    assert "not built" in page.text and "npm run build" in page.text
    (tmp_path / "index.html").write_text("<title>chart</title>")
    (tmp_path / "app.js").write_text("console.log(1)")
    built = TestClient(create_app(settings, replace(TEST_CONFIG, frontend_dir=tmp_path)))
    page = built.get("/")
    assert page.text == "<title>chart</title>"
    assert built.get("/app.js").text == "console.log(1)"
    assert built.get("/health").json() == {"status": "ok"}
    for path in ("/", "/app.js"):  # HEAD: the same headers, no body (uptime checks, curl -I)
        headers_only = built.head(path)
        assert headers_only.status_code == 200 and headers_only.content == b""
        got = built.get(path)
        for name in ("content-length", "content-security-policy"):
            assert headers_only.headers[name] == got.headers[name], name
    assert built.head("/").headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    for response in (page, built.get("/health"), built.get("/api/v1/klines")):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"


# --- query plans ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bulk(settings: Settings) -> list[str]:
    """Enough rows in every kline relation for the planner to prefer indexes honestly."""
    import psycopg

    symbols = [f"RESTPLAN{i:02d}USDT" for i in range(20)]
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        for name, interval in INTERVALS.items():
            seconds = "" if name == "1s" else ", 1"
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} SELECT s, to_timestamp(0) + n * {step}::interval, "
                    "to_timestamp(0) + n * {step}::interval + interval '999 ms', "
                    "1, 2, 0.5, 1.5, 10, 15, 3, 4, 5" + seconds + " "
                    "FROM unnest(%s::text[]) s, generate_series(1, 2000) n"
                ).format(
                    sql.Identifier(interval.relation),
                    step=sql.Literal(f"{interval.ms} milliseconds"),
                ),
                (symbols,),
            )
            conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(interval.relation)))
    return symbols


def plan(db: Conn, query: sql.Composable | str, params: Any, *, analyze: bool = False) -> str:
    explain = sql.SQL("EXPLAIN (ANALYZE, COSTS OFF) " if analyze else "EXPLAIN ")
    statement = explain + (sql.SQL(query) if isinstance(query, str) else query)
    return "\n".join(str(row[0]) for row in db.execute(statement, params).fetchall())


def executed(plan_text: str) -> str:
    """The lines of an analysed plan whose node ran."""
    return "\n".join(line for line in plan_text.splitlines() if "(never executed)" not in line)


def by_symbol_and_time(plan_text: str) -> bool:
    """Every index the plan scans is one on (symbol, open_time): the primary key, or on
    TimescaleDB a continuous aggregate's own index on its group-by columns (names truncated).
    A TimescaleDB relation with no chunk yet is planned as an empty result: nothing to scan."""
    if "One-Time Filter: false" in plan_text and "Scan" not in plan_text:
        return True
    used = re.findall(r"Index (?:Only )?Scan(?: Backward)? using (\S+)", plan_text)
    return bool(used) and all(
        name.strip('"').endswith("_pkey") or "_symbol_open_time_i" in name for name in used
    )


def test_queries_use_the_primary_key(db: Conn, bulk: list[str]) -> None:
    symbol = bulk[7]
    lo, hi = history.to_datetime(0), history.to_datetime(history.END_OF_TIME)
    for interval in INTERVALS.values():
        for descending in (False, True):
            text = plan(db, history.range_query(interval, descending), (symbol, lo, hi, 500))
            assert "Seq Scan" not in text, text
            assert by_symbol_and_time(text), text
        for page in (False, True):
            text = plan(db, history.newest_query(interval, page=page), (symbol,))
            assert "Seq Scan" not in text and by_symbol_and_time(text), text
    # The forming candles: the last two minutes of the symbol's 1s klines.
    minute = INTERVALS["1m"]
    recent, now = history.to_datetime(1_880_000), history.to_datetime(2_040_000)
    text = plan(db, history.folded_query(minute), (symbol, recent, now))
    assert "Seq Scan" not in text and by_symbol_and_time(text), text
    # Its bounds come from the statement's own probe: plain PostgreSQL prunes the partitions
    # outside them only when it runs, so the scans that ran are the ones to look at.
    window = {"symbol": symbol, "lo": recent, "hi": now, "buckets": 720}
    text = executed(plan(db, history.newest_folded_query(minute), window, analyze=True))
    assert "Seq Scan" not in text and by_symbol_and_time(text), text
    text = plan(db, HAS_DATA_QUERY, {"symbol": symbol})
    assert "Seq Scan" not in text, text
    text = plan(db, SYMBOLS_QUERY, None)
    assert "Seq Scan" not in text, text
