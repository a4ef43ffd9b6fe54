"""``/api/v1/gaps`` and the missing-seconds gauge against the session's PostgreSQL: the missing
ranges and counts of seconds left out on purpose, the range bounded by the retention and the
current second, 400s naming the parameter, and the gauge over the last whole hour."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import psycopg
import pytest

from cryptochart.core.database import Conn
from cryptochart.core.settings import Settings
from tests.api_server import TEST_CONFIG, ApiServer, insert_seconds, kline, serve, wait_for

SYMBOL, EMPTY = "GAPAPI", "GAPNONE"
MINUTE = 60_000
NOW_MINUTE = int(time.time()) // 60 * MINUTE
# Stored: two hours before the minute this module was collected in to twenty minutes after it (the
# gauge's hour is then covered whenever in the session it is read), except these ranges.
DROPPED = [
    (NOW_MINUTE - 90 * MINUTE, NOW_MINUTE - 90 * MINUTE + 4_000),  # before the last hour
    (NOW_MINUTE - 30 * MINUTE + 10_000, NOW_MINUTE - 30 * MINUTE + 15_000),
    (NOW_MINUTE - 20 * MINUTE - 1_000, NOW_MINUTE - 20 * MINUTE),  # one second
]


@pytest.fixture(scope="module")
def api(settings: Settings, module_db: Conn) -> Iterator[ApiServer]:
    seconds = range(NOW_MINUTE - 120 * MINUTE, NOW_MINUTE + 20 * MINUTE, 1000)
    kept = [t for t in seconds if not any(a <= t < b for a, b in DROPPED)]
    insert_seconds(module_db, [kline(SYMBOL, t, "10.5", "11", "10", "10.75") for t in kept])
    ours = replace(settings, symbols=(SYMBOL, EMPTY))
    with serve(ours, replace(TEST_CONFIG, gaps_metric_seconds=0.2)) as server:
        yield server


@pytest.fixture(scope="module")
def module_db(settings: Settings) -> Iterator[Conn]:
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="module")
def http(api: ApiServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.url, timeout=30) as client:
        yield client


def gaps(http: httpx.Client, **params: Any) -> dict[str, Any]:
    response = http.get("/api/v1/gaps", params={"symbol": SYMBOL, **params})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_missing_ranges_and_counts(http: httpx.Client) -> None:
    start, end = NOW_MINUTE - 100 * MINUTE, NOW_MINUTE - 20 * MINUTE
    answer = gaps(http, startTime=start, endTime=end)
    assert answer == {
        "symbol": SYMBOL,
        "startTime": start,
        "endTime": end,
        "expected": 4800,
        "stored": 4800 - 10,
        "missing": 10,
        "ranges": [list(r) for r in DROPPED],
        "shortMinutes": [],
    }


def test_a_range_without_gaps_and_one_of_nothing_stored(http: httpx.Client) -> None:
    start = NOW_MINUTE - 10 * MINUTE
    whole = gaps(http, startTime=start, endTime=start + MINUTE)
    assert (whole["expected"], whole["stored"], whole["ranges"]) == (60, 60, [])
    before = NOW_MINUTE - 180 * MINUTE
    empty = gaps(http, startTime=before, endTime=before + MINUTE)
    assert (empty["missing"], empty["ranges"]) == (60, [[before, before + MINUTE]])


def test_the_range_stops_at_the_retention_and_the_current_second(http: httpx.Client) -> None:
    now = int(time.time() * 1000)
    old = now - 7 * 86_400_000 - 3_600_000  # an hour past the default retention of 7 days
    bounded = gaps(http, startTime=old, endTime=old + 86_400_000)
    assert bounded["startTime"] >= now - 7 * 86_400_000
    assert bounded["expected"] == (bounded["endTime"] - bounded["startTime"]) // 1000
    future = gaps(http, startTime=now - MINUTE, endTime=now + 10 * MINUTE)
    assert future["endTime"] <= int(time.time() * 1000)
    assert future["endTime"] > now - MINUTE


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({}, "startTime"),
        ({"startTime": "soon"}, "startTime"),
        ({"startTime": -5}, "startTime"),
        ({"startTime": NOW_MINUTE, "endTime": NOW_MINUTE}, "endTime"),
        ({"startTime": NOW_MINUTE, "endTime": NOW_MINUTE + 86_401_000}, "endTime"),
        ({"startTime": NOW_MINUTE - 2 * 86_400_000}, "startTime"),  # endTime defaults to now
        ({"startTime": NOW_MINUTE, "symbol": "NOSUCHSYMBOL"}, "symbol"),
        ({"startTime": NOW_MINUTE, "symbol": "not a symbol"}, "symbol"),
    ],
)
def test_bad_parameters_are_400s_naming_them(
    http: httpx.Client, params: dict[str, Any], parameter: str
) -> None:
    response = http.get("/api/v1/gaps", params={"symbol": SYMBOL, **params})
    assert response.status_code == 400, response.text
    assert response.json()["parameter"] == parameter


def test_a_whole_day_is_allowed(http: httpx.Client) -> None:
    answer = gaps(http, startTime=NOW_MINUTE - 86_400_000, endTime=NOW_MINUTE)
    assert answer["expected"] == 86_400 and answer["missing"] >= 10


def test_the_gauge_counts_the_last_whole_hour(http: httpx.Client) -> None:
    def gauge() -> dict[str, float]:
        values = {}
        for line in http.get("/metrics").text.splitlines():
            if line.startswith("cryptochart_api_missing_seconds{"):
                labels, value = line.rsplit(" ", 1)
                values[labels.split('symbol="', 1)[1].split('"', 1)[0]] = float(value)
        return values

    wait_for(lambda: gauge().get(SYMBOL) == 6.0, 30, "the gauge of GAPAPI at 6 seconds")
    assert gauge()[EMPTY] == 3600.0
