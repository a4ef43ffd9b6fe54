"""BinanceSource against the fake exchange: faults, gap repair, sharding, limits and REST."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import msgspec
import pytest

from cryptochart.core.kline import Kline
from cryptochart.ingest.sources.base import Rejected
from cryptochart.ingest.sources.binance.feed import BinanceSource
from cryptochart.ingest.sources.binance.rest import BinanceRest, BinanceRestError
from cryptochart.ingest.sources.binance.stream import ConnectionPolicy
from tests.fakes.binance import FakeBinance

SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
QUICK = ConnectionPolicy(backoff_initial=0.02, backoff_max=0.2, handover_timeout=2.0)
ROOT = Path(__file__).resolve().parent.parent


class Collected:
    """Everything a source yields, gathered by a background task; tests wait on conditions."""

    def __init__(self, source: BinanceSource) -> None:
        self.source = source
        self.items: list[Kline | Rejected] = []
        self._changed = asyncio.Condition()
        self._task = asyncio.create_task(self._collect())

    async def _collect(self) -> None:
        async for item in self.source.stream():
            self.items.append(item)
            async with self._changed:
                self._changed.notify_all()

    async def wait_until(self, condition: Callable[[], bool], within: float = 15.0) -> None:
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: condition() or self._task.done())
        if self._task.done():
            self._task.result()  # surface the stream's error
            raise AssertionError("the stream ended")

    async def wait_to_reach(self, open_time: int, symbols: list[str]) -> None:
        """Wait until every symbol has a closed kline at or after ``open_time``."""
        await self.wait_until(lambda: self.reached(open_time, symbols))

    def closed(self, symbol: str) -> list[Kline]:
        return [k for k in self.items if isinstance(k, Kline) and k.closed and k.symbol == symbol]

    def rejected(self) -> list[Rejected]:
        return [item for item in self.items if isinstance(item, Rejected)]

    def reached(self, open_time: int, symbols: list[str]) -> bool:
        """Every symbol has a closed kline at or after ``open_time``."""
        return all((k := self.closed(s)) and k[-1].open_time >= open_time for s in symbols)

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@contextlib.asynccontextmanager
async def collecting(source: BinanceSource) -> AsyncIterator[Collected]:
    collected = Collected(source)
    try:
        yield collected
    finally:
        await collected.stop()


def assert_complete_and_exact(collected: Collected, fake: FakeBinance, symbols: list[str]) -> None:
    """Closed klines of each symbol: contiguous seconds, none twice, equal to the exchange's."""
    for symbol in symbols:
        klines = collected.closed(symbol)
        times = [k.open_time for k in klines]
        assert len(times) == len(set(times)), f"{symbol}: duplicates"
        assert times == list(range(times[0], times[-1] + 1000, 1000)), f"{symbol}: missing"
        for kline in klines:
            assert msgspec.structs.replace(kline, event_time=0) == msgspec.structs.replace(
                fake.kline(symbol, kline.open_time), event_time=0
            )


async def no_wait(seconds: float) -> None:
    """A REST client's sleep that returns at once, so Retry-After costs the test nothing."""


async def test_drops_and_server_shutdown_lose_and_repeat_nothing() -> None:
    async with FakeBinance(speed=40) as fake:
        rest = BinanceRest(fake.rest_url, sleep=no_wait)
        source = BinanceSource(
            SYMBOLS, ws_url=fake.ws_url, rest_url=fake.rest_url, policy=QUICK, rest=rest
        )
        async with collecting(source) as got:
            await got.wait_to_reach(fake.now_ms() + 5_000, SYMBOLS)

            fake.throttle(1, retry_after=3)  # the first repair request meets a 429
            fake.drop_connections(outage_ms=8_000)
            await got.wait_to_reach(fake.now_ms() + 12_000, SYMBOLS)
            assert source.sequencer is not None and source.sequencer.gaps_requested >= 3

            await fake.send_server_shutdown(close_after_ms=4_000)
            await fake.wait_until(lambda: fake.stats.connections_opened >= 3)
            await got.wait_to_reach(fake.now_ms() + 8_000, SYMBOLS)

            fake.drop_connections(outage_ms=3_000)
            await got.wait_to_reach(fake.now_ms() + 5_000, SYMBOLS)
        await rest.aclose()

    assert_complete_and_exact(got, fake, SYMBOLS)
    assert fake.stats.throttled_requests == 1
    assert fake.stats.most_connections_open == 2  # the successor opened before the old closed
    assert any(not k.closed for k in got.items if isinstance(k, Kline))
    assert got.rejected() == []
    assert sum(len(got.closed(s)) for s in SYMBOLS) > 3 * 30


async def test_connections_are_rotated_before_the_exchange_cuts_them() -> None:
    rotating = ConnectionPolicy(
        rotate_after=0.3, backoff_initial=0.02, backoff_max=0.2, handover_timeout=2.0
    )
    async with FakeBinance(speed=40) as fake:
        source = BinanceSource(SYMBOLS, ws_url=fake.ws_url, rest_url=fake.rest_url, policy=rotating)
        async with collecting(source) as got:
            await fake.wait_until(lambda: fake.stats.connections_opened >= 4)
            await got.wait_to_reach(fake.now_ms() + 3_000, SYMBOLS)
    assert_complete_and_exact(got, fake, SYMBOLS)
    assert fake.stats.most_connections_open == 2
    assert fake.stats.connections_dropped == 0


async def test_resuming_fills_the_time_the_feed_was_down() -> None:
    async with FakeBinance(speed=20) as fake:
        last_stored = fake.now_ms() // 1000 * 1000 - 90_000
        source = BinanceSource(
            ["BTCUSDT"],
            ws_url=fake.ws_url,
            rest_url=fake.rest_url,
            policy=QUICK,
            resume_after={"BTCUSDT": last_stored},
        )
        async with collecting(source) as got:
            await got.wait_to_reach(fake.now_ms() + 2_000, ["BTCUSDT"])
    assert got.closed("BTCUSDT")[0].open_time == last_stored + 1000
    assert_complete_and_exact(got, fake, ["BTCUSDT"])


async def test_symbols_beyond_the_per_connection_limit_get_more_connections() -> None:
    symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT", "ADAUSDT", "DOGEUSDT"]
    policy = ConnectionPolicy(streams_per_connection=3, backoff_initial=0.02)
    async with FakeBinance(speed=20, max_streams_per_connection=3) as fake:
        source = BinanceSource(symbols, ws_url=fake.ws_url, rest_url=fake.rest_url, policy=policy)
        assert [len(shard) for shard in source.shards] == [3, 3, 1]
        async with collecting(source) as got:
            await got.wait_to_reach(fake.now_ms() + 2_000, symbols)
    assert sorted(fake.stats.streams_per_connection) == [1, 3, 3]
    assert fake.stats.rejected_handshakes == 0
    assert_complete_and_exact(got, fake, symbols)


async def test_streams_beyond_the_url_are_subscribed_within_the_message_limit() -> None:
    symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT"]
    policy = ConnectionPolicy(url_budget=20, streams_per_subscribe=1, control_messages_per_second=3)
    async with FakeBinance(speed=20, max_messages_per_second=3) as fake:
        source = BinanceSource(symbols, ws_url=fake.ws_url, rest_url=fake.rest_url, policy=policy)
        async with collecting(source) as got:
            await got.wait_to_reach(fake.now_ms() + 1_000, symbols)
    assert fake.stats.streams_per_connection == [1]  # one in the URL, four by SUBSCRIBE
    assert fake.stats.subscribe_requests == 4
    assert fake.stats.rate_limit_violations == 0


async def test_pings_are_answered_with_their_payload() -> None:
    async with FakeBinance(speed=5, ping_interval=0.05) as fake:
        source = BinanceSource(["BTCUSDT"], ws_url=fake.ws_url, rest_url=fake.rest_url)
        async with collecting(source):
            await fake.wait_until(lambda: fake.stats.pongs_matched >= 3)
    assert fake.stats.pongs_missing == 0


async def test_malformed_messages_are_rejected_and_the_stream_goes_on() -> None:
    async with FakeBinance(speed=20) as fake:
        source = BinanceSource(SYMBOLS, ws_url=fake.ws_url, rest_url=fake.rest_url, policy=QUICK)
        async with collecting(source) as got:
            await got.wait_to_reach(fake.now_ms(), SYMBOLS)
            await fake.inject('{"stream": "btcusdt@kline_1s", "data": {"e": "kline"}}')
            await fake.inject("not json at all")
            await got.wait_until(lambda: len(got.rejected()) == 2)
            await got.wait_to_reach(fake.now_ms() + 2_000, SYMBOLS)
    assert Counter(r.kind for r in got.rejected()) == {"missing_field": 1, "not_json": 1}
    assert got.rejected()[1].raw == b"not json at all"
    assert_complete_and_exact(got, fake, SYMBOLS)


# --- The REST client on its own ------------------------------------------------------------


async def test_rest_klines_cover_a_range_across_pages_exactly() -> None:
    async with FakeBinance(speed=1) as fake, BinanceRest(fake.rest_url) as rest:
        end = fake.now_ms() // 1000 * 1000
        start = end - 2_500_000
        klines = [k async for k in rest.klines("ETHUSDT", start, end) if isinstance(k, Kline)]
    assert [k.open_time for k in klines] == list(range(start, end, 1000))
    assert klines[7] == msgspec.structs.replace(fake.kline("ETHUSDT", start + 7000), event_time=0)
    assert fake.stats.rest_requests["/api/v3/klines"] == 3


@pytest.mark.parametrize("status", [429, 418])
async def test_rest_honours_retry_after(status: int) -> None:
    waits: list[float] = []

    async def recorded(seconds: float) -> None:
        waits.append(seconds)

    async with FakeBinance(speed=1) as fake, BinanceRest(fake.rest_url, sleep=recorded) as rest:
        fake.throttle(2, retry_after=7, status=status)
        end = fake.now_ms() // 1000 * 1000
        items = [k async for k in rest.klines("BTCUSDT", end - 10_000, end)]
    assert len(items) == 10
    assert len(waits) == 2 and all(6.5 < w <= 7 for w in waits)
    assert fake.stats.throttled_requests == 2


async def test_rest_gives_up_after_its_attempts_and_on_client_errors() -> None:
    async with (
        FakeBinance(speed=1) as fake,
        BinanceRest(fake.rest_url, sleep=no_wait, max_attempts=3) as rest,
    ):
        fake.throttle(10)
        with pytest.raises(BinanceRestError, match="3 attempts"):
            [k async for k in rest.klines("BTCUSDT", 0, 10_000)]
        fake.throttle(0)
        with pytest.raises(BinanceRestError, match="400"):
            [k async for k in rest.klines("btc-usdt", 0, 10_000)]


# --- The fake as a subprocess, as fault tests run it ----------------------------------------


def test_the_fake_runs_as_a_subprocess() -> None:
    fake = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.binance", "--port", "0", "--speed", "10"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert fake.stdout is not None
        urls = json.loads(fake.stdout.readline())
        assert httpx.get(f"{urls['rest_url']}/api/v3/ping").json() == {}
        assert httpx.get(f"{urls['rest_url']}/fake/drop").json() == {"dropped": 0}
        assert httpx.get(f"{urls['rest_url']}/fake/stats").json()["now_ms"] > 0
    finally:
        fake.terminate()
        assert fake.wait(timeout=10) == 0
