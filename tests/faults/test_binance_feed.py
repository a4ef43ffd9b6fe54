"""`cryptochart produce --source binance` against the fake Binance: the exchange cuts the
WebSocket connections and announces a server shutdown, or the producer is killed -9 and started
again; after gap repair kline_1s has every second of every symbol exactly once, each equal to the
exchange's kline."""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial

import httpx
import pytest

from cryptochart.core.database import connect
from cryptochart.core.kline import Kline
from cryptochart.core.settings import Settings
from cryptochart.devservices.ports import free_port
from tests.fakes.market import kline_at
from tests.faults.conftest import Scenario
from tests.faults.expected import SECOND_MS, by_key, unique_klines
from tests.faults.stages import Stage, Stages, assert_alive, settings_env
from tests.faults.stored import assert_final_levels, assert_landed_exactly, first_second, matches
from tests.faults.topics import closed_klines_in
from tests.faults.waiting import exceeds, poll_until

SEED = 5
# The exchange's clock runs at the machine's pace, as Binance's does: the pipeline refuses klines
# opening more than a minute after its own clock, so a faster fake would be refused within a minute.
SPEED = 1.0  # exchange seconds per wall-clock second
# The producer repairs the last 10 minutes from REST when it starts, so every run spans at least
# this many final minutes per symbol, and 5-minute buckets, all compared exactly.
MIN_MINUTES = 5


@dataclass(frozen=True)
class FakeExchange:
    """``python -m tests.fakes.binance`` as a subprocess, driven over its /fake/* endpoints."""

    url: str

    def stats(self) -> dict[str, int]:
        answer: dict[str, int] = httpx.get(f"{self.url}/fake/stats", timeout=5).json()
        return answer

    def now_ms(self) -> int:
        return self.stats()["now_ms"]

    def connections_opened(self) -> int:
        return self.stats()["connections_opened"]

    def drop(self, outage_ms: int) -> None:
        httpx.get(f"{self.url}/fake/drop", params={"outage_ms": outage_ms}, timeout=5)

    def server_shutdown(self, close_after_ms: int) -> None:
        httpx.get(
            f"{self.url}/fake/server-shutdown", params={"close_after_ms": close_after_ms}, timeout=5
        )

    def answers(self) -> bool:
        try:
            return httpx.get(f"{self.url}/api/v3/ping", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False


@pytest.fixture
def exchange(stages: Stages, base_settings: Settings) -> Iterator[FakeExchange]:
    port = free_port()
    argv = [sys.executable, "-m", "tests.fakes.binance", f"--port={port}", f"--speed={SPEED}"]
    stages.add(
        Stage(
            "fake-binance", [*argv, f"--seed={SEED}"], settings_env(base_settings), stages.log_dir
        )
    ).start()
    fake = FakeExchange(f"http://127.0.0.1:{port}")
    poll_until(fake.answers, 30, "the fake Binance to answer")
    yield fake


def binance_scenario(scenario: Scenario, exchange: FakeExchange, prefix: str) -> Settings:
    return scenario(
        symbols=tuple(f"{prefix}{i}USDT" for i in range(3)),
        binance_ws_url=exchange.url.replace("http://", "ws://"),
        binance_rest_url=exchange.url,
    )


def newest_second(url: str, symbols: tuple[str, ...]) -> int:
    """The newest open time (ms) every symbol has reached in kline_1s."""
    with connect(url, timeout=5) as conn:
        row = conn.execute(
            "SELECT min(last) FROM (SELECT (extract(epoch FROM max(open_time)) * 1000)::bigint "
            "AS last FROM kline_1s WHERE symbol = ANY(%s) GROUP BY symbol) s",
            (list(symbols),),
        ).fetchone()
    return int(str(row[0])) if row and row[0] is not None else 0


def stored_spans(url: str, symbols: tuple[str, ...]) -> dict[str, tuple[int, int]]:
    """Each symbol's first and last open time (ms) in kline_1s."""
    with connect(url, timeout=5) as conn:
        rows = conn.execute(
            "SELECT symbol, (extract(epoch FROM min(open_time)) * 1000)::bigint, "
            "(extract(epoch FROM max(open_time)) * 1000)::bigint FROM kline_1s "
            "WHERE symbol = ANY(%s) GROUP BY symbol",
            (list(symbols),),
        ).fetchall()
    return {str(s): (int(str(a)), int(str(b))) for s, a, b in rows}


def exchange_klines(spans: dict[str, tuple[int, int]]) -> list[Kline]:
    """The exchange's klines of every second from each symbol's first to its last."""
    return [
        kline_at(SEED, symbol, t)
        for symbol, (first, last) in spans.items()
        for t in range(first, last + SECOND_MS, SECOND_MS)
    ]


def run_drops(
    scenario: Scenario, stages: Stages, exchange: FakeExchange, drops: int, prefix: str
) -> None:
    settings = binance_scenario(scenario, exchange, prefix)
    url, names = settings.database_url, settings.symbols
    rng = random.Random(drops)
    aggregator = stages.cli("aggregator", settings, "aggregate")
    inserter = stages.cli("inserter", settings, "insert")
    producer = stages.cli("producer", settings, "produce", "--source=binance")
    poll_until(lambda: first_second(url, names), 30, "the first klines of every symbol")

    def flowing_past(ms: int) -> None:
        poll_until(exceeds(partial(newest_second, url, names), ms), 30, f"kline_1s past {ms}")

    for _ in range(drops):
        opened = exchange.connections_opened()
        exchange.drop(outage_ms=rng.choice([0, 1_000, 4_000]))
        poll_until(exceeds(exchange.connections_opened, opened), 30, "a reconnect")
        flowing_past(exchange.now_ms() + 2 * SECOND_MS)
    opened = exchange.connections_opened()
    exchange.server_shutdown(close_after_ms=3_000)
    poll_until(exceeds(exchange.connections_opened, opened), 30, "the successor")
    flowing_past(exchange.now_ms() + 4 * SECOND_MS)
    assert producer.stop() == 0, producer.tail()

    stats = exchange.stats()
    assert stats["connections_dropped"] >= drops and stats["server_shutdowns_sent"] >= 1, stats
    count = assert_every_second_stored(settings)
    assert_alive(aggregator, inserter)
    print(f"\nbinance: {drops} drops and a serverShutdown, {count} klines, 0 missing")


def assert_every_second_stored(settings: Settings) -> int:
    """kline_1s holds what Kafka holds: every second between each symbol's first and last, each
    the exchange's kline, and every level their aggregation in each final bucket; returns how
    many klines that is."""
    url, names = settings.database_url, settings.symbols
    produced = unique_klines(closed_klines_in(settings.kafka_bootstrap, settings.klines_topic))
    poll_until(matches(url, "kline_1s", by_key(produced)), 60, "kline_1s = what Kafka holds")
    spans = stored_spans(url, names)
    assert spans.keys() == set(names)
    expected = exchange_klines(spans)
    assert_landed_exactly(url, expected, levels=[])
    compared = assert_final_levels(url, expected, MIN_MINUTES, ("1m", "5m"))
    print(f"\nfinal candles compared: {compared}")
    return len(expected)


LONG = (pytest.mark.slow, pytest.mark.timeout(900))


@pytest.mark.parametrize("drops", [3, pytest.param(10, marks=LONG)])
def test_drops_and_server_shutdown_lose_nothing(
    scenario: Scenario, stages: Stages, exchange: FakeExchange, drops: int
) -> None:
    run_drops(scenario, stages, exchange, drops, f"BDRP{drops}X")


def run_producer_kills(
    scenario: Scenario, stages: Stages, exchange: FakeExchange, kills: int, prefix: str
) -> None:
    """A producer started again repairs the time it was away from REST (its look-back of
    `produce --history`, 600 s by default)."""
    settings = binance_scenario(scenario, exchange, prefix)
    url, names = settings.database_url, settings.symbols
    rng = random.Random(kills)
    aggregator = stages.cli("aggregator", settings, "aggregate")
    inserter = stages.cli("inserter", settings, "insert")
    producer = stages.cli("producer", settings, "produce", "--source=binance")
    poll_until(lambda: first_second(url, names), 30, "the first klines of every symbol")
    newest = partial(newest_second, url, names)
    for _ in range(kills):
        time.sleep(rng.uniform(0.2, 1.5))  # a random moment of its work
        producer.restart()
        # Gone for a few exchange seconds: the new producer must fetch them.
        after = exchange.now_ms() + 3 * SECOND_MS
        poll_until(exceeds(newest, after), 30, f"kline_1s past {after}")
    assert producer.stop() == 0, producer.tail()
    count = assert_every_second_stored(settings)
    assert_alive(aggregator, inserter)
    print(f"\nbinance: producer killed {kills} times, {count} klines, 0 missing")


@pytest.mark.parametrize("kills", [1, pytest.param(10, marks=LONG)])
def test_kill_9_binance_producer_loses_nothing(
    scenario: Scenario, stages: Stages, exchange: FakeExchange, kills: int
) -> None:
    run_producer_kills(scenario, stages, exchange, kills, f"BKIL{kills}X")
