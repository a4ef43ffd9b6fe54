"""Each symbol's precision, from its source to the API: Binance's exchangeInfo (from our fake
Binance, in the real format), the simulated feed's grids, a replay's digits; published to the
compacted instruments topic, stored by the inserter in ``symbol_info``, listed by
``/api/v1/symbols``. Bad metadata on the topic is dead-lettered and loses nothing else."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from confluent_kafka import Producer

from cryptochart.core.instrument import Instrument, decimals_of, step_of
from cryptochart.core.kline import Kline
from cryptochart.core.settings import Settings
from cryptochart.ingest.producer import KlineProducer, declare_instruments
from cryptochart.ingest.sources.binance.exchange_info import (
    UnreadableExchangeInfo,
    instruments_from_exchange_info,
)
from cryptochart.ingest.sources.binance.feed import BinanceSource
from cryptochart.ingest.sources.binance.rest import BinanceRest, BinanceRestError
from cryptochart.ingest.sources.replay import ReplaySource
from cryptochart.ingest.sources.simulated import SimulatedSource
from tests.api_server import serve
from tests.fakes.binance import FakeBinance, exchange_info
from tests.faults.topics import read_topic
from tests.pipeline import DATA, produce, running_inserter, wait_for

FIRST_180 = "BTCUSDT-1s-2024-03-01.part01.first180rows.csv"


def on_grid(value: Decimal, step: Decimal) -> bool:
    return value % step == 0


# --- sources ----------------------------------------------------------------------------------


async def test_binance_sizes_come_from_exchange_info() -> None:
    async with FakeBinance(listed=("BTCUSDT", "ETHUSDT", "XRPUSDT")) as fake:
        source = BinanceSource(
            ["BTCUSDT", "XRPUSDT", "NOTLISTED1"], ws_url=fake.ws_url, rest_url=fake.rest_url
        )
        found = await source.instruments()
        assert fake.stats.rest_requests["/api/v3/exchangeInfo"] == 1  # one request for all
    assert [i.symbol for i in found] == ["BTCUSDT", "XRPUSDT"]  # the unlisted one is left out
    btc = found[0]
    assert btc == Instrument("BTCUSDT", Decimal("0.01"), Decimal("1E-8"))
    for instrument in found:  # the fake's klines lie on the grids it declares
        for second in range(60):
            k = fake.kline(instrument.symbol, fake.now_ms() // 1000 * 1000 - second * 1000)
            assert all(on_grid(p, instrument.tick_size) for p in (k.open, k.high, k.low, k.close))
            assert on_grid(k.volume, instrument.lot_size)


async def test_fake_exchange_info_speaks_binance_format() -> None:
    async with FakeBinance() as fake, httpx.AsyncClient(base_url=fake.rest_url) as http:
        everything = (await http.get("/api/v3/exchangeInfo")).json()
        one = (await http.get("/api/v3/exchangeInfo", params={"symbol": "DOGEUSDT"})).json()
        some = await http.get("/api/v3/exchangeInfo", params={"symbols": '["BTCUSDT","SOLUSDT"]'})
        bad = await http.get("/api/v3/exchangeInfo", params={"symbols": "BTCUSDT"})
    assert set(everything) == {"timezone", "serverTime", "rateLimits", "exchangeFilters", "symbols"}
    assert [s["symbol"] for s in everything["symbols"]] == [
        "BTCUSDT",
        "ETHUSDT",
        "BNBUSDT",
        "SOLUSDT",
    ]
    assert [s["symbol"] for s in some.json()["symbols"]] == ["BTCUSDT", "SOLUSDT"]
    assert bad.status_code == 400 and bad.json()["code"] == -1100
    doge = one["symbols"][0]
    assert (doge["symbol"], doge["status"], doge["baseAsset"], doge["quoteAsset"]) == (
        "DOGEUSDT",
        "TRADING",
        "DOGE",
        "USDT",
    )
    filters = {f["filterType"]: f for f in doge["filters"]}
    assert set(filters["PRICE_FILTER"]) == {"filterType", "minPrice", "maxPrice", "tickSize"}
    assert set(filters["LOT_SIZE"]) == {"filterType", "minQty", "maxQty", "stepSize"}
    assert filters["LOT_SIZE"]["stepSize"] == "0.00000001"
    assert len(filters["PRICE_FILTER"]["tickSize"].split(".")[1]) == 8  # Binance pads to 8


def test_exchange_info_without_usable_steps_declares_nothing() -> None:
    info = exchange_info(1, ["BTCUSDT", "ETHUSDT"], 0)
    symbols: list[dict[str, Any]] = info["symbols"]  # type: ignore[assignment]
    symbols[1]["filters"][0]["tickSize"] = "0.00000000"  # a disabled PRICE_FILTER
    raw = json.dumps(info).encode()
    assert [i.symbol for i in instruments_from_exchange_info(raw, {"BTCUSDT", "ETHUSDT"})] == [
        "BTCUSDT"
    ]


async def test_unreadable_exchange_info_is_an_error() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"serverTime": 1})  # an answer, but not exchangeInfo

    client = httpx.AsyncClient(
        base_url="http://binance.invalid", transport=httpx.MockTransport(answer)
    )
    async with client, BinanceRest("http://binance.invalid", client=client) as rest:
        with pytest.raises(BinanceRestError, match="exchangeInfo: unreadable"):
            await rest.instruments(["BTCUSDT"])
    with pytest.raises(UnreadableExchangeInfo):
        instruments_from_exchange_info(b"[]", ["BTCUSDT"])


async def test_simulated_sizes_are_its_grids() -> None:
    symbols = ["BTCUSDT", "XRPUSDT", "SIM1", "SIM2", "SIM3"]
    source = SimulatedSource(symbols, seed=7, speed=None, start_ms=1_700_000_000_000, count=300)
    declared = {i.symbol: i for i in await source.instruments()}
    assert set(declared) == set(symbols)
    finest: dict[str, int] = dict.fromkeys(symbols, 0)
    async for k in source.stream():
        assert isinstance(k, Kline)
        steps = declared[k.symbol]
        assert all(on_grid(p, steps.tick_size) for p in (k.open, k.high, k.low, k.close))
        assert on_grid(k.volume, steps.lot_size) and on_grid(
            k.taker_buy_base_volume, steps.lot_size
        )
        finest[k.symbol] = max([finest[k.symbol], *(decimals_of(p) for p in (k.open, k.close))])
    for symbol, steps in declared.items():  # and no coarser: prices use every declared place
        assert finest[symbol] == decimals_of(steps.tick_size), symbol
    assert declared["BTCUSDT"].tick_size == Decimal("0.01")


async def test_replay_sizes_are_its_finest_digits(tmp_path: Path) -> None:
    assert await ReplaySource(DATA / FIRST_180, speed=None).instruments() == [
        Instrument("BTCUSDT", Decimal("0.01"), Decimal("0.00001"))  # BTCUSDT's real sizes
    ]
    lines = (DATA / FIRST_180).read_text().splitlines()
    fields = lines[3].split(",")
    fields[3] = "61136.50500000"  # one low with a third decimal
    lines[3] = ",".join(fields)
    lines.insert(5, "not,a,kline")
    (tmp_path / "ETHBTC-1s-2024-03-01.csv").write_text("\n".join(lines) + "\n")
    source = ReplaySource(tmp_path, speed=None)
    assert await source.instruments() == [Instrument("ETHBTC", step_of(3), step_of(5))]
    assert sum(source.rejections.counts.values()) == 0  # the scan is not the replay


async def test_a_failing_source_declares_nothing_and_goes_on(settings: Settings) -> None:
    class Broken(SimulatedSource):
        async def instruments(self) -> list[Instrument]:
            raise BinanceRestError("exchangeInfo: no answer")

    producer = KlineProducer(settings, "sim")
    assert await declare_instruments(Broken(["BTCUSDT"]), producer) == 0
    assert producer.counts["instruments"] == 0


# --- through Kafka to the database and the API ------------------------------------------------


@pytest.fixture(scope="module")
def pipeline(settings: Settings) -> Iterator[Settings]:
    with running_inserter(settings):
        yield settings


def stored_sizes(settings: Settings, symbols: list[str]) -> dict[str, tuple[Any, ...]]:
    with psycopg.connect(settings.database_url) as conn:
        rows = conn.execute(
            """SELECT symbol, tick_size, lot_size, updated_at FROM symbol_info
               WHERE symbol = ANY(%s)""",
            (symbols,),
        ).fetchall()
    return {str(r[0]): tuple(r[1:]) for r in rows}


def test_declared_sizes_reach_the_api(pipeline: Settings) -> None:
    symbols = ["PRECA1", "PRECB2"]
    source = SimulatedSource(symbols, seed=3, speed=None, count=5)
    producer = KlineProducer(pipeline, source.name)

    async def run_source() -> tuple[int, list[Kline], list[Instrument]]:
        declared = await declare_instruments(source, producer)
        klines = [k async for k in source.stream() if isinstance(k, Kline)]
        return declared, klines, await source.instruments()

    count, klines, instruments = asyncio.run(run_source())
    assert count == 2 and producer.flush(30) == 0
    produce(pipeline, klines)
    declared = {i.symbol: i for i in instruments}
    wait_for(lambda: len(stored_sizes(pipeline, symbols)) == 2, 60, "symbol_info rows")
    stored = stored_sizes(pipeline, symbols)
    for symbol in symbols:
        assert stored[symbol][:2] == (declared[symbol].tick_size, declared[symbol].lot_size)
    listed: dict[str, dict[str, str]] = {}
    with serve(pipeline) as api:

        def both_listed() -> bool:
            # The symbols' klines may still be on their way to kline_1s.
            listed.update({r["symbol"]: r for r in httpx.get(f"{api.url}/api/v1/symbols").json()})
            return listed.keys() >= set(symbols)

        wait_for(both_listed, 60, "both symbols listed by the API")
    for symbol in symbols:
        assert listed[symbol]["tickSize"] == format(declared[symbol].tick_size.normalize(), "f")
        assert listed[symbol]["lotSize"] == format(declared[symbol].lot_size.normalize(), "f")


def test_latest_declaration_wins_and_only_a_change_moves_updated_at(pipeline: Settings) -> None:
    symbol = "PRECC3"
    producer = KlineProducer(pipeline, "test")

    def declare(tick: str, lot: str) -> None:
        producer.declare(Instrument(symbol, Decimal(tick), Decimal(lot)))
        assert producer.flush(30) == 0

    declare("0.01", "0.001")
    wait_for(lambda: symbol in stored_sizes(pipeline, [symbol]), 60, "the first declaration")
    first = stored_sizes(pipeline, [symbol])[symbol]
    declare("0.0100", "0.00100")  # the same sizes, written differently
    declare("0.001", "0.001")
    wait_for(
        lambda: stored_sizes(pipeline, [symbol])[symbol][0] == Decimal("0.001"), 60, "the change"
    )
    changed = stored_sizes(pipeline, [symbol])[symbol]
    assert changed[2] > first[2]
    declare("0.001", "0.001")
    declare("0.5", "1")  # a marker: once it is stored, the repeat before it was handled
    wait_for(lambda: stored_sizes(pipeline, [symbol])[symbol][0] == Decimal("0.5"), 60, "marker")


def test_bad_metadata_is_dead_lettered(pipeline: Settings) -> None:
    raw = Producer({"bootstrap.servers": pipeline.kafka_bootstrap})
    poison = {
        b"PRECBAD1": b"{not json",
        b"PRECBAD2": b'{"symbol":"PRECBAD2","tickSize":"-1","lotSize":"1"}',
        b"PRECBAD3": b'{"symbol":"bad symbol","tickSize":"1","lotSize":"1"}',
    }
    for key, value in poison.items():
        raw.produce(pipeline.instruments_topic, key=key, value=value)
    raw.produce(
        pipeline.instruments_topic,
        key=b"PRECGOOD",
        value=b'{"symbol":"PRECGOOD","tickSize":"0.05","lotSize":"0.1"}',
    )
    assert raw.flush(30) == 0
    wait_for(lambda: "PRECGOOD" in stored_sizes(pipeline, ["PRECGOOD"]), 60, "the good one")
    assert stored_sizes(pipeline, ["PRECGOOD"])["PRECGOOD"][:2] == (
        Decimal("0.05"),
        Decimal("0.1"),
    )

    def letters() -> dict[bytes, str]:
        found = read_topic(pipeline.kafka_bootstrap, pipeline.dead_letter_topic)
        return {v: h["kind"].decode() for v, h in found if v in poison.values()}

    wait_for(lambda: len(letters()) == 3, 60, "three dead letters")
    assert sorted(letters().values()) == ["bad_step", "bad_symbol", "undecodable"]
