"""Candle statistics (VWAP, taker sell volume) on real Binance seconds sent through Kafka, the
inserter and the minute job: exact against Decimal arithmetic and Binance's own 1m file, the same
digits in the REST API (withStats=true) and in the analysts' views, in each flavour."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any

import httpx
import msgspec
import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from cryptochart.core.kline import Kline
from cryptochart.core.settings import Settings
from cryptochart.ingest.minute_job import MinuteJob
from tests.api_server import ApiServer, serve
from tests.pipeline import produce, read_dump, renamed, running_inserter, wait_rows

SYMBOL = "STATSBTC"
T0 = 1_709_251_200_000  # 2024-03-01T00:00:00Z
QUIET = T0 + 180_000  # a second without trades, alone in its minute


def reference_vwap(quote: Decimal, volume: Decimal) -> Decimal | None:
    """quote / volume to 18 places, half up, from 60 significant digits."""
    if volume == 0:
        return None
    with localcontext() as ctx:
        ctx.prec = 60
        return (quote / volume).quantize(Decimal("1e-18"), ROUND_HALF_UP)


@pytest.fixture(scope="module")
def seconds() -> list[Kline]:
    real = renamed(read_dump("BTCUSDT-1s-2024-03-01.part01.first180rows.csv"), SYMBOL)
    last = real[-1]
    zero = Decimal("0E-8")
    quiet = msgspec.structs.replace(
        last,
        open_time=QUIET,
        close_time=QUIET + 999,
        open=last.close,
        high=last.close,
        low=last.close,
        volume=zero,
        quote_volume=zero,
        trades=0,
        taker_buy_base_volume=zero,
        taker_buy_quote_volume=zero,
    )
    return [*real, quiet]


@pytest.fixture(scope="module")
def stored(archive_settings: Settings, seconds: list[Kline]) -> Settings:
    produce(archive_settings, seconds)
    with running_inserter(archive_settings):
        wait_rows(archive_settings, [SYMBOL], len(seconds))
    with psycopg.connect(archive_settings.database_url) as conn:
        MinuteJob(archive_settings).run_once(conn)
    return archive_settings


@pytest.fixture(scope="module")
def api(stored: Settings) -> Iterator[ApiServer]:
    with serve(stored) as server:
        yield server


def klines(api: ApiServer, interval: str, **extra: str) -> list[list[Any]]:
    params = {"symbol": SYMBOL, "interval": interval, "startTime": "0", "limit": "1000", **extra}
    response = httpx.get(f"{api.url}/api/v1/klines", params=params, timeout=30)
    assert response.status_code == 200, response.text
    rows: list[list[Any]] = response.json()
    return rows


def test_seconds_stats_are_exact(api: ApiServer, seconds: list[Kline]) -> None:
    plain = klines(api, "1s")
    rows = klines(api, "1s", withStats="true")
    assert len(rows) == len(seconds) == 181
    assert [r[:12] for r in rows] == plain  # appended, nothing else changes
    for row, k in zip(rows, seconds, strict=True):
        expected = reference_vwap(k.quote_volume, k.volume)
        if expected is None:
            assert row[12] is None
        else:
            assert Decimal(row[12]) == expected, row
            assert row[12] == format(expected.normalize(), "f")  # no trailing zeros
        assert row[13] == format(k.volume - k.taker_buy_base_volume, "f")
    assert rows[0][12] == "61136.465280419944628711"  # 579883.04137270 / 9.48506000
    assert rows[0][13] == "3.86791000"  # 9.48506000 - 5.61715000
    assert rows[-1][12:] == [None, "0.00000000"]  # the quiet second


def test_minute_stats_match_binance_own_minutes(api: ApiServer) -> None:
    binance = read_dump("BTCUSDT-1m-2024-03-01.zip")[:3]
    rows = klines(api, "1m", withStats="true")
    assert [r[0] for r in rows] == [T0, T0 + 60_000, T0 + 120_000, QUIET]
    for row, minute in zip(rows, binance, strict=False):
        assert Decimal(row[12]) == reference_vwap(minute.quote_volume, minute.volume)
        assert Decimal(row[13]) == minute.volume - minute.taker_buy_base_volume
    assert rows[3][12] is None  # a minute without volume has no VWAP
    for interval in ("5m", "15m", "1h", "1d"):  # one candle of all 181 seconds
        (row,) = klines(api, interval, withStats="true")
        assert Decimal(row[12]) == reference_vwap(Decimal(row[7]), Decimal(row[5])), interval
        assert Decimal(row[13]) == Decimal(row[5]) - Decimal(row[9]), interval


def test_with_seconds_and_stats(api: ApiServer) -> None:
    both = klines(api, "1m", withSeconds="true", withStats="true")
    counted = klines(api, "1m", withSeconds="true")
    stats = klines(api, "1m", withStats="true")
    assert [r[12] for r in both] == [60, 60, 60, 1]
    assert [r[:13] for r in both] == counted
    assert [r[13:] for r in both] == [r[12:] for r in stats]


def test_analyst_views_give_the_same_digits(stored: Settings, api: ApiServer) -> None:
    analyst = make_conninfo(stored.database_url, user="cryptochart_analyst")
    with psycopg.connect(analyst) as conn:
        for interval in ("1s", "1m", "5m", "15m", "1h", "1d"):
            relation = f"kline_{interval}"
            in_sql = conn.execute(
                f"""SELECT vwap::text, taker_sell_volume::text FROM {relation}_stats
                    WHERE symbol = %s ORDER BY open_time""",
                (SYMBOL,),
            ).fetchall()
            rest = klines(api, interval, withStats="true")
            assert [list(r) for r in in_sql] == [r[12:] for r in rest], relation
            columns = [
                c.name
                for c in conn.execute(f"SELECT * FROM {relation}_stats LIMIT 0").description or ()
            ]
            base = [
                c.name for c in conn.execute(f"SELECT * FROM {relation} LIMIT 0").description or ()
            ]
            assert columns == [*base, "vwap", "taker_sell_volume"]
