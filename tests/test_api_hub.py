"""The live side's parts on their own, with fake readers and a fake channel plugin: which
channels get frames, how a new follower is seeded, and the 24 h ticker's reads. No database,
no Kafka, no sockets (tests/test_api_live.py runs them together against the real services)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import msgspec
import psycopg

from cryptochart.api.background import Background
from cryptochart.api.candles import Candle
from cryptochart.api.consumer import Delivery
from cryptochart.api.day_tickers import DayTickers
from cryptochart.api.followers import Followers
from cryptochart.api.hub import Hub
from cryptochart.api.intervals import INTERVALS, Interval
from cryptochart.api.live import LiveCandles
from cryptochart.api.seeding import RESEED_ATTEMPTS, Seeder
from cryptochart.api.shared import Shared
from tests.api_server import kline

T0 = 1_764_150_000_000  # a whole minute, in ms
M1 = INTERVALS["1m"]


class Channels:
    """Records what the hub publishes, decoded."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, object]]] = []

    def publish(self, data: bytes, channels: str) -> None:
        self.sent.append((channels, msgspec.json.decode(data)))

    def on(self, channel: str) -> list[dict[str, object]]:
        return [frame for name, frame in self.sent if name == channel]


class Reads:
    """Fake database reads that count their calls."""

    def __init__(self, day: Candle | None = None, current: Candle | None = None) -> None:
        self.day, self.current = day, current
        self.days: list[str] = []
        self.currents: list[tuple[str, str, int | None]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.expected_reads = 0
        self.all_read = asyncio.Event()  # set at the expected number of current-candle reads

    async def read_day(self, symbol: str) -> Candle | None:
        self.days.append(symbol)
        return self.day

    async def read_current(self, symbol: str, interval: Interval, known: int | None) -> Candle:
        self.currents.append((symbol, interval.name, known))
        if len(self.currents) == self.expected_reads:
            self.all_read.set()
        await self.gate.wait()
        if self.current is None:
            raise psycopg.OperationalError("the database is away")
        return self.current


def candle(open_time: int, open_: str, close: str, seconds: int = 1) -> Candle:
    k = kline("BTCUSDT", open_time, open_, max(open_, close), min(open_, close), close)
    one = Candle.of_kline(k)
    return msgspec.structs.replace(one, seconds=seconds)


def test_followers_count_per_channel() -> None:
    followers = Followers()
    assert followers.add("kline:BTCUSDT:1m") is True
    assert followers.add("kline:BTCUSDT:1m") is False
    assert "kline:BTCUSDT:1m" in followers and "kline:ETHUSDT:1m" not in followers
    assert followers.remove("kline:BTCUSDT:1m") is False
    assert followers.remove("kline:BTCUSDT:1m") is True
    assert "kline:BTCUSDT:1m" not in followers


async def test_frames_go_only_to_followed_channels() -> None:
    channels, reads = Channels(), Reads(current=candle(T0, "100", "101"))
    seen: list[str] = []
    hub = Hub(channels, (reads.read_day, reads.read_current), seen.append)
    await hub.follow_kline("BTCUSDT", M1)
    hub.receive(Delivery(kline("BTCUSDT", T0 + 1000, "101", "103", "100", "102"), "sim", T0))
    hub.receive(Delivery(kline("ETHUSDT", T0, "5", "5", "5", "5"), "sim", T0))
    assert [name for name, _ in channels.sent] == ["status", "kline:BTCUSDT:1m"]
    frame = channels.on("kline:BTCUSDT:1m")[0]
    assert frame["k"][1:5] == ["100", "103", "100", "102"]  # type: ignore[index]
    assert frame["closed"] is False
    assert seen == ["BTCUSDT", "ETHUSDT"]  # every symbol on the feed is known to the catalog
    hub.unfollow_kline("BTCUSDT", M1)
    hub.receive(Delivery(kline("BTCUSDT", T0 + 2000, "102", "102", "102", "102"), "sim", T0))
    assert len(channels.on("kline:BTCUSDT:1m")) == 1
    await hub.close()


async def test_concurrent_followers_share_one_seed_read() -> None:
    reads = Reads(current=candle(T0, "100", "101"))
    reads.gate.clear()
    hub = Hub(Channels(), (reads.read_day, reads.read_current), lambda _: None)
    first = asyncio.create_task(hub.follow_kline("BTCUSDT", M1))
    second = asyncio.create_task(hub.follow_kline("BTCUSDT", M1))
    await asyncio.sleep(0)
    reads.gate.set()
    frames = [msgspec.json.decode(f or b"null") for f in await asyncio.gather(first, second)]
    assert reads.currents == [("BTCUSDT", "1m", None)]
    assert [f["snapshot"] for f in frames] == [True, True]
    await hub.close()


async def test_a_failed_seed_is_read_again_a_bounded_number_of_times() -> None:
    reads = Reads(current=None)  # every read fails
    reads.expected_reads = 1 + RESEED_ATTEMPTS
    followers = Followers()
    background = Background()
    seeder = Seeder(LiveCandles(), reads.read_current, background, followers.__contains__, 0.0)
    followers.add("kline:BTCUSDT:1m")
    await seeder.seeded("BTCUSDT", M1, first=True)
    await asyncio.wait_for(reads.all_read.wait(), 5)
    for _ in range(10):  # give a read past the bound every chance to happen
        await asyncio.sleep(0)
    await background.close()
    assert len(reads.currents) == 1 + RESEED_ATTEMPTS


async def test_an_unfollowed_channel_is_not_seeded() -> None:
    reads = Reads(current=candle(T0, "100", "101"))
    live = LiveCandles()
    background = Background()
    seeder = Seeder(live, reads.read_current, background, lambda _: False)
    await seeder.seeded("BTCUSDT", M1, first=True)
    assert reads.currents and live.snapshot("BTCUSDT", M1) is None
    await background.close()


async def test_day_tickers_read_once_and_again_when_stale() -> None:
    reads = Reads(day=candle(T0, "100", "110"))
    clock = [0.0]
    day = DayTickers(reads.read_day, Background(), clock=lambda: clock[0], refresh_seconds=60)
    snapshot = await day.snapshot("BTCUSDT", now=T0)
    assert snapshot is not None and snapshot.last_price == "110"  # the stored close, no feed yet
    day.saw("BTCUSDT", Decimal("121"), T0 + 5)
    assert day.frame("BTCUSDT", Decimal("121"), T0 + 5, T0 + 6).price_change_percent == "21.000"
    day.refresh_if_stale("BTCUSDT")  # read just now: not stale
    assert reads.days == ["BTCUSDT"]
    clock[0] = 61.0
    day.refresh_if_stale("BTCUSDT")
    await day.read("BTCUSDT")  # the read the refresh started, not a second one
    assert reads.days == ["BTCUSDT", "BTCUSDT"]


async def test_a_day_read_that_fails_leaves_no_percentage() -> None:
    async def away(symbol: str) -> Candle | None:
        raise psycopg.OperationalError("the database is away")

    day = DayTickers(away, Background())
    assert await day.snapshot("BTCUSDT", now=T0) is None
    frame = day.frame("BTCUSDT", Decimal("1"), T0, T0)
    assert frame.price_change_percent is None


async def test_a_shared_answer_is_computed_once_per_ttl_for_all_callers() -> None:
    clock = [0.0]
    shared: Shared[int] = Shared(ttl=1.0, clock=lambda: clock[0])
    calls: list[float] = []
    gate = asyncio.Event()

    async def compute() -> int:
        calls.append(clock[0])
        await gate.wait()
        return len(calls)

    waiting = [asyncio.create_task(shared.get(compute)) for _ in range(5)]
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(*waiting) == [1] * 5  # five callers, one computation
    clock[0] = 0.9
    assert await shared.get(compute) == 1
    clock[0] = 1.0
    assert await shared.get(compute) == 2
    assert calls == [0.0, 1.0]
