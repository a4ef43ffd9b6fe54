"""The TradingView UDF datafeed (``/udf/*``) against the session's services, on real Binance
seconds written by the inserter's own write and rolled up by the minute job, in each flavour.

Every rule of UDF's history request is checked as TradingView documents it: ``from`` inclusive,
``to`` exclusive, ``countback`` winning over ``from``, bars ascending, ``no_data`` with
``nextTime`` (the closest bar in the past) only when older data exists, errors as
``{"s":"error","errmsg":…}``; and the symbol's precision: ``pricescale`` from its tick size, prices
written at it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import msgspec
import psycopg
import pytest

from cryptochart.core.instrument import Instrument
from cryptochart.core.kline import Kline
from cryptochart.core.settings import Settings
from cryptochart.ingest.inserter import staging_rows, write_batch, write_instruments
from cryptochart.ingest.minute_job import MinuteJob
from tests.api_server import ApiServer, serve
from tests.pipeline import read_dump, renamed

FIRST_180 = "BTCUSDT-1s-2024-03-01.part01.first180rows.csv"
T0 = 1_709_251_200  # 2024-03-01T00:00:00Z, the dump's first second
DECLARED = "UDFBTC"  # tick 0.01, lot 0.00001: BTCUSDT's
GAPPED = "UDFGAP"  # no declared precision; its second minute is missing
TICK, LOT = Decimal("0.01"), Decimal("0.00001")


@pytest.fixture(scope="module")
def seconds() -> list[Kline]:
    return read_dump(FIRST_180)


@pytest.fixture(scope="module")
def api(archive_settings: Settings, seconds: list[Kline]) -> Iterator[ApiServer]:
    history = archive_settings
    gapped = [k for k in renamed(seconds, GAPPED) if not 60 <= k.open_time // 1000 - T0 < 120]
    with psycopg.connect(history.database_url) as conn:
        write_batch(conn, staging_rows(enumerate(renamed(seconds, DECLARED) + gapped)))
        write_instruments(conn, [Instrument(DECLARED, TICK, LOT)])
        MinuteJob(history).run_once(conn)
    with serve(history) as server:
        yield server


@pytest.fixture(scope="module")
def http(api: ApiServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.url, timeout=30) as client:
        yield client


def udf(http: httpx.Client, path: str, **params: Any) -> Any:
    response = http.get(f"/udf/{path}", params=params)
    assert response.status_code == 200, response.text
    return json.loads(response.text, parse_float=Decimal)  # numbers exactly as written


def history(http: httpx.Client, **params: Any) -> Any:
    return udf(http, "history", **params)


def refused(http: httpx.Client, path: str, **params: Any) -> str:
    """The errmsg of a 400 in UDF's error shape."""
    response = http.get(f"/udf/{path}", params=params)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["s"] == "error", body
    errmsg: str = body["errmsg"]
    return errmsg


def times(answer: Any) -> list[int]:
    assert answer["s"] == "ok", answer
    return [t - T0 for t in answer["t"]]


def test_config_declares_the_resolutions(http: httpx.Client) -> None:
    config = udf(http, "config")
    assert config["supported_resolutions"] == ["1S", "1", "5", "15", "60", "1D"]
    assert config["supports_time"] is True and config["supports_search"] is True
    assert config["supports_group_request"] is False


def test_time_is_unix_seconds(http: httpx.Client) -> None:
    before = int(time.time())
    response = http.get("/udf/time")
    after = int(time.time())
    assert response.status_code == 200 and response.text.isdigit()
    assert before <= int(response.text) <= after


def test_symbol_info_has_its_precision(http: httpx.Client) -> None:
    info = udf(http, "symbols", symbol=DECLARED)
    assert info["name"] == info["ticker"] == DECLARED
    assert (info["pricescale"], info["minmov"], info["volume_precision"]) == (100, 1, 5)
    assert info["has_seconds"] is True and info["seconds_multipliers"] == ["1"]
    assert info["has_intraday"] is True and info["intraday_multipliers"] == ["1", "5", "15", "60"]
    assert info["has_daily"] is True and info["session"] == "24x7"
    assert info["timezone"] == "Etc/UTC"
    assert info["supported_resolutions"] == ["1S", "1", "5", "15", "60", "1D"]
    assert udf(http, "symbols", symbol=f"cryptochart:{DECLARED}")["name"] == DECLARED
    undeclared = udf(http, "symbols", symbol=GAPPED)  # stored digits: Binance's 8 places
    assert (undeclared["pricescale"], undeclared["volume_precision"]) == (10**8, 8)
    assert refused(http, "symbols", symbol="NOSUCHUDF").startswith("symbol:")
    assert refused(http, "symbols").startswith("symbol:")


def test_search(http: httpx.Client) -> None:
    found = udf(http, "search", query="udf", limit=30)
    assert {r["symbol"] for r in found} >= {DECLARED, GAPPED}
    assert all(r["type"] == "crypto" and r["exchange"] == "cryptochart" for r in found)
    assert len(udf(http, "search", query="udf", limit=1)) == 1
    assert udf(http, "search", query="udfbt") == [
        {
            "symbol": DECLARED,
            "full_name": f"cryptochart:{DECLARED}",
            "description": DECLARED,
            "exchange": "cryptochart",
            "ticker": DECLARED,
            "type": "crypto",
        }
    ]
    assert udf(http, "search", query="udf", exchange="NYSE") == []
    assert refused(http, "search", query="udf", limit=0).startswith("limit:")


def test_from_inclusive_to_exclusive_ascending(http: httpx.Client, seconds: list[Kline]) -> None:
    answer = history(http, symbol=DECLARED, resolution="1S", **{"from": T0 + 10, "to": T0 + 20})
    assert times(answer) == list(range(10, 20))
    expected = seconds[10:20]
    assert answer["o"] == [k.open.quantize(TICK) for k in expected]
    assert answer["h"] == [k.high.quantize(TICK) for k in expected]
    assert answer["l"] == [k.low.quantize(TICK) for k in expected]
    assert answer["c"] == [k.close.quantize(TICK) for k in expected]
    assert answer["v"] == [k.volume.quantize(LOT) for k in expected]
    # A `from` inside a bar leaves it out; a `to` inside one keeps it (it opens before `to`).
    minutes = history(http, symbol=DECLARED, resolution="1", **{"from": T0 + 1, "to": T0 + 121})
    assert times(minutes) == [60, 120]


def test_prices_are_numbers_at_the_tick_size(http: httpx.Client, seconds: list[Kline]) -> None:
    raw = http.get(
        "/udf/history",
        params={"symbol": DECLARED, "resolution": "1S", "from": T0, "to": T0 + 1},
    ).text
    first = seconds[0]
    assert first.open == Decimal("61130.99000000")
    assert f'"o":[{first.open.quantize(TICK)}]' in raw  # 61130.99: a number, two places
    assert f'"v":[{first.volume.quantize(LOT)}]' in raw  # 9.48506
    undeclared = http.get(
        "/udf/history", params={"symbol": GAPPED, "resolution": "1S", "from": T0, "to": T0 + 1}
    ).text
    assert '"o":[61130.99000000]' in undeclared  # as stored


def test_minutes_hour_and_day_equal_binance(http: httpx.Client) -> None:
    binance = read_dump("BTCUSDT-1m-2024-03-01.zip")[:3]
    answer = history(http, symbol=DECLARED, resolution="1", **{"from": T0, "to": T0 + 180})
    assert times(answer) == [0, 60, 120]
    assert answer["o"] == [k.open.quantize(TICK) for k in binance]
    assert answer["h"] == [k.high.quantize(TICK) for k in binance]
    assert answer["l"] == [k.low.quantize(TICK) for k in binance]
    assert answer["c"] == [k.close.quantize(TICK) for k in binance]
    assert answer["v"] == [k.volume.quantize(LOT) for k in binance]
    total = sum((k.volume for k in binance), Decimal(0)).quantize(LOT)
    for resolution in ("5", "15", "60", "1D", "D"):
        bar = history(http, symbol=DECLARED, resolution=resolution, **{"from": T0, "to": T0 + 1})
        assert times(bar) == [0], resolution  # day bars at 00:00 UTC
        assert bar["v"] == [total] and bar["o"] == [binance[0].open.quantize(TICK)]


def test_countback_wins_over_from(http: httpx.Client) -> None:
    answer = history(
        http, symbol=DECLARED, resolution="1S", countback=30, **{"from": T0 + 100, "to": T0 + 110}
    )
    assert times(answer) == list(range(80, 110))  # exactly 30, ending before `to`
    short = history(
        http, symbol=DECLARED, resolution="1S", countback=30, **{"from": T0, "to": T0 + 5}
    )
    assert times(short) == list(range(5))  # fewer exist
    minutes = history(
        http, symbol=DECLARED, resolution="1", countback=2, **{"from": T0 + 170, "to": T0 + 175}
    )
    assert times(minutes) == [60, 120]
    gap = history(
        http, symbol=GAPPED, resolution="1S", countback=3, **{"from": T0 + 100, "to": T0 + 122}
    )
    assert times(gap) == [59, 120, 121]  # across the hole, still ascending


def test_no_data_says_where_older_data_is(http: httpx.Client) -> None:
    inside_gap = history(http, symbol=GAPPED, resolution="1S", **{"from": T0 + 70, "to": T0 + 90})
    assert inside_gap == {"s": "no_data", "nextTime": T0 + 59}
    gap_minute = history(http, symbol=GAPPED, resolution="1", **{"from": T0 + 60, "to": T0 + 120})
    assert gap_minute == {"s": "no_data", "nextTime": T0}
    before_all = history(http, symbol=DECLARED, resolution="1S", **{"from": T0 - 100, "to": T0})
    assert before_all == {"s": "no_data"}
    before_all = history(
        http, symbol=DECLARED, resolution="1", countback=5, **{"from": T0 - 600, "to": T0}
    )
    assert before_all == {"s": "no_data"}
    after_all = history(
        http, symbol=DECLARED, resolution="1S", **{"from": T0 + 500, "to": T0 + 600}
    )
    assert after_all == {"s": "no_data", "nextTime": T0 + 179}


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"symbol": DECLARED, "resolution": "2", "from": T0, "to": T0 + 60}, "resolution"),
        ({"symbol": DECLARED, "resolution": "1W", "from": T0, "to": T0 + 60}, "resolution"),
        ({"symbol": "NOSUCHUDF", "resolution": "1", "from": T0, "to": T0 + 60}, "symbol"),
        ({"symbol": "bad symbol!", "resolution": "1", "from": T0, "to": T0 + 60}, "symbol"),
        ({"resolution": "1", "from": T0, "to": T0 + 60}, "symbol"),
        ({"symbol": DECLARED, "resolution": "1", "from": "yesterday", "to": T0}, "from"),
        ({"symbol": DECLARED, "resolution": "1", "from": -1, "to": T0}, "from"),
        ({"symbol": DECLARED, "resolution": "1", "from": T0}, "to"),
        ({"symbol": DECLARED, "resolution": "1", "from": T0 + 60, "to": T0}, "from"),
        (
            {"symbol": DECLARED, "resolution": "1", "from": T0, "to": T0 + 60, "countback": 0},
            "countback",
        ),
        (
            {"symbol": DECLARED, "resolution": "1", "from": T0, "to": T0 + 60, "countback": "x"},
            "countback",
        ),
        (
            {"symbol": DECLARED, "resolution": "1", "from": T0, "to": T0 + 60, "countback": 10_001},
            "countback",
        ),
        ({"symbol": DECLARED, "resolution": "1S", "from": 0, "to": T0}, "from"),  # too many bars
    ],
)
def test_bad_input_is_a_400_naming_the_parameter(
    http: httpx.Client, params: dict[str, Any], parameter: str
) -> None:
    assert refused(http, "history", **params).startswith(f"{parameter}:")


def test_answers_are_valid_json_for_any_client(http: httpx.Client) -> None:
    """A plain JSON parser (floats) reads the numbers too."""
    response = http.get(
        "/udf/history", params={"symbol": DECLARED, "resolution": "1", "from": T0, "to": T0 + 60}
    )
    assert response.headers["content-type"].startswith("application/json")
    plain = msgspec.json.decode(response.content)
    assert plain["o"] == [61130.99]
