"""History through the whole pipeline: klines written by the real inserter and rolled up by the
real minute job come back from the API exactly as Binance published them, in each schema
flavour."""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import replace
from typing import Any

import httpx
import psycopg

from cryptochart.core.settings import Settings
from cryptochart.ingest.minute_job import MinuteJob
from tests.api_server import TEST_CONFIG, serve
from tests.pipeline import DATA, produce, read_dump, renamed, running_inserter, wait_rows

FIRST_180 = "BTCUSDT-1s-2024-03-01.part01.first180rows.csv"


def binance_rows(name: str, count: int) -> list[list[Any]]:
    """The first rows of a dump exactly as Binance's REST API would give them."""
    path = DATA / name
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as zf:
            text = zf.read(zf.namelist()[0]).decode()
    else:
        text = path.read_text()
    rows = list(csv.reader(io.StringIO(text)))[:count]
    return [[int(r[0]), *r[1:6], int(r[6]), r[7], int(r[8]), r[9], r[10], "0"] for r in rows]


def klines_from_api(settings: Settings, symbol: str, interval: str) -> list[list[Any]]:
    with serve(settings, replace(TEST_CONFIG, pool_min_size=1, pool_max_size=1)) as api:
        response = httpx.get(
            f"{api.url}/api/v1/klines",
            params={"symbol": symbol, "interval": interval, "startTime": 0, "limit": 1000},
            timeout=30,
        )
    assert response.status_code == 200, response.text
    rows: list[list[Any]] = response.json()
    return rows


def test_binance_seconds_and_minutes_come_back_exactly(settings: Settings) -> None:
    history = replace(settings, retention_1s="100 years")
    symbol = "APIPIPEBTC"
    produce(history, renamed(read_dump(FIRST_180), symbol))
    with running_inserter(history):
        wait_rows(history, [symbol], 180)
    with psycopg.connect(history.database_url) as conn:
        MinuteJob(history).run_once(conn)
    assert klines_from_api(history, symbol, "1s") == binance_rows(FIRST_180, 180)
    assert klines_from_api(history, symbol, "1m") == binance_rows("BTCUSDT-1m-2024-03-01.zip", 3)


def test_with_seconds_tells_partial_candles(settings: Settings) -> None:
    history = replace(settings, retention_1s="100 years")
    symbol = "APIPARTIAL"
    seconds = renamed(read_dump(FIRST_180), symbol)
    del seconds[70]  # the second minute misses one second
    produce(history, seconds)
    with running_inserter(history):
        wait_rows(history, [symbol], 179)
    with psycopg.connect(history.database_url) as conn:
        MinuteJob(history).run_once(conn)
    with serve(history, TEST_CONFIG) as api:
        plain = httpx.get(
            f"{api.url}/api/v1/klines", params={"symbol": symbol, "interval": "1m", "startTime": 0}
        ).json()
        counted = httpx.get(
            f"{api.url}/api/v1/klines",
            params={"symbol": symbol, "interval": "1m", "startTime": 0, "withSeconds": "true"},
        ).json()
    assert [len(r) for r in plain] == [12, 12, 12]
    assert [r[12] for r in counted] == [60, 59, 60]
    assert [r[:12] for r in counted] == plain
