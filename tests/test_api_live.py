"""The live WebSocket against the session's Kafka: a kline produced to the topic reaches the
clients of its symbol and interval only, in-progress candles fold closed seconds, a stalled
client delays no one, and bad frames get error frames."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace
from decimal import Decimal

import pytest
from confluent_kafka import Producer
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from cryptochart.core.database import Conn
from cryptochart.core.kline import Kline
from cryptochart.core.settings import Settings
from tests.api_server import (
    TEST_CONFIG,
    ApiServer,
    RawSocket,
    folded_row,
    frames_until,
    get_json,
    insert_seconds,
    kline,
    live_row,
    metric,
    next_frame,
    produce,
    producer,
    send,
    serve,
    subscribe,
    truth,
)

T1 = 1_706_745_600_000  # 2024-02-01T00:00:00Z
MINUTE = 60_000
INTERVALS = ["1s", "1m", "5m", "15m", "1h", "1d"]
LIVE_CONFIG = replace(TEST_CONFIG, ws_max_subscriptions=8, ws_max_frame_bytes=1024, ws_backlog=1000)


@pytest.fixture(scope="module")
def api(settings: Settings) -> Iterator[ApiServer]:
    with serve(settings, LIVE_CONFIG) as server:
        yield server


@pytest.fixture(scope="module")
def kafka(settings: Settings) -> Producer:
    return producer(settings)


@asynccontextmanager
async def client(api: ApiServer) -> AsyncIterator[ClientConnection]:
    async with connect(api.ws_url, max_size=2**20) as ws:
        first = json.loads(await ws.recv())
        assert first["type"] == "status"
        yield ws


def price(i: int) -> str:
    return f"{Decimal(30_000) + Decimal(i) / 8:.8f}"


def second(symbol: str, t: int, i: int, *, closed: bool = True, high: str | None = None) -> Kline:
    return kline(
        symbol,
        t,
        price(i),
        high or price(i + 9),
        price(i - 5),
        price(i + 2),
        f"{Decimal(i % 4 + 1) / 100:.8f}",
        closed=closed,
    )


async def test_a_kline_reaches_its_subscribers_only(
    api: ApiServer, db: Conn, kafka: Producer, settings: Settings
) -> None:
    a, b = "LIVEAUSDT", "LIVEBUSDT"
    insert_seconds(db, [second(a, T1, 0), second(b, T1, 0)])  # known symbols
    async with client(api) as ws_a, client(api) as ws_b:
        assert (await subscribe(ws_a, "kline", [a], "1s"))["type"] == "subscribed"
        assert (await subscribe(ws_b, "kline", [b], "1s"))["type"] == "subscribed"
        ka = second(a, T1 + 1000, 1)
        produce(kafka, settings, [ka])
        frame = await next_frame(ws_a, lambda f: f["type"] == "kline")
        assert frame["symbol"] == a and frame["interval"] == "1s"
        assert frame["k"] == live_row(ka)
        assert frame["closed"] is True
        assert frame["eventTime"] == ka.event_time
        assert frame["sentTime"] > 0
        # A's frame was published before B's: had ws_b been sent A, it would come first.
        kb = second(b, T1 + 1000, 1)
        produce(kafka, settings, [kb])
        seen = await frames_until(ws_b, lambda f: f["type"] == "kline")
        assert all(f.get("symbol") != a for f in seen)
        assert seen[-1]["symbol"] == b and seen[-1]["k"] == live_row(kb)
        # Unsubscribed, ws_a gets nothing more of A (a pong after a new A frame proves it).
        await send(
            ws_a, {"op": "unsubscribe", "channel": "kline", "symbols": [a], "interval": "1s"}
        )
        await next_frame(ws_a, lambda f: f["type"] == "unsubscribed")
        produce(kafka, settings, [second(a, T1 + 2000, 2)])
        async with client(api) as ws_c:
            await subscribe(ws_c, "kline", [a], "1s")
            produce(kafka, settings, [second(a, T1 + 3000, 3)])
            await next_frame(ws_c, lambda f: f["type"] == "kline" and f["k"][0] == T1 + 3000)
        await send(ws_a, {"op": "ping"})
        seen = await frames_until(ws_a, lambda f: f["type"] == "pong")
        assert [f["type"] for f in seen] == ["pong"]


async def test_intervals_above_1s_fold_closed_seconds_only(
    api: ApiServer, db: Conn, kafka: Producer, settings: Settings
) -> None:
    symbol = "LIVEFOLDUSDT"
    stored = [second(symbol, T1 + i * 1000, i) for i in range(10)]
    insert_seconds(db, stored)  # what the inserter has written of this minute so far
    async with client(api) as ws:
        assert (await subscribe(ws, "kline", [symbol], "1m"))["type"] == "subscribed"
        snapshot = await next_frame(ws, lambda f: f["type"] == "kline")
        assert snapshot["interval"] == "1m" and snapshot["closed"] is False
        assert snapshot["k"] == truth(db, symbol, "1m")[0][:11] == folded_row(stored, T1)

        async def candle_after(k: Kline) -> dict[str, object]:
            produce(kafka, settings, [k])
            return await next_frame(ws, lambda f: f["type"] == "kline")

        closed = list(stored)
        for i in (10, 11):
            k = second(symbol, T1 + i * 1000, i)
            closed.append(k)
            frame = await candle_after(k)
            assert frame["k"] == folded_row(closed, T1) and frame["closed"] is False
        spike = second(symbol, T1 + 12_000, 12, closed=False, high="99999.00000000")
        frame = await candle_after(spike)
        assert frame["k"] == folded_row([*closed, spike], T1)
        assert frame["k"][2] == "99999.00000000" and frame["closed"] is False
        k12 = second(symbol, T1 + 12_000, 12)
        closed.append(k12)
        frame = await candle_after(k12)
        assert frame["k"] == folded_row(closed, T1)  # the spike is gone, second 12 counted once
        k59 = second(symbol, T1 + 59_000, 59)
        closed.append(k59)
        frame = await candle_after(k59)
        assert frame["k"] == folded_row(closed, T1) and frame["closed"] is True
        next_minute = second(symbol, T1 + MINUTE, 60)
        frame = await candle_after(next_minute)
        assert frame["k"] == folded_row([next_minute], T1 + MINUTE) and frame["closed"] is False


async def test_every_interval_and_the_ticker_follow_one_symbol(
    api: ApiServer, db: Conn, kafka: Producer, settings: Settings
) -> None:
    symbol = "LIVEALLUSDT"
    stored = [second(symbol, T1 + 5 * MINUTE + i * 1000, i) for i in range(3)]
    insert_seconds(db, stored)
    async with client(api) as ws:
        for interval in INTERVALS:
            assert (await subscribe(ws, "kline", [symbol], interval))["type"] == "subscribed"
        ack = await subscribe(ws, "ticker", [symbol])
        assert ack == {"type": "subscribed", "channel": "ticker", "symbols": [symbol]}
        k = second(symbol, T1 + 5 * MINUTE + 3000, 3)
        produce(kafka, settings, [k])
        wanted = {*INTERVALS, "ticker"}
        got: dict[str, dict[str, object]] = {}
        async with asyncio.timeout(15):
            while not wanted <= set(got):
                frame = json.loads(await ws.recv())
                if frame["type"] == "kline" and frame["k"][6] == k.close_time:
                    got[frame["interval"]] = frame
                elif frame["type"] == "ticker" and frame["lastPrice"] == format(k.close, "f"):
                    got["ticker"] = frame
        assert got["1s"]["k"] == live_row(k)
        for interval, bucket in [("1m", 60_000), ("5m", 300_000), ("15m", 900_000)]:
            opening = (k.open_time // bucket) * bucket
            assert got[interval]["k"] == folded_row([*stored, k], opening), interval
        assert got["1h"]["k"] == folded_row([*stored, k], T1)
        assert got["1d"]["k"] == folded_row([*stored, k], T1)
        first = stored[0].open
        percent = (k.close - first) * 100 / first
        assert got["ticker"]["priceChangePercent"] == f"{percent:.3f}"


async def test_a_stalled_client_delays_no_one(
    api: ApiServer, db: Conn, kafka: Producer, settings: Settings
) -> None:
    symbol = "LIVESLOWUSDT"
    insert_seconds(db, [second(symbol, T1, 0)])
    stalled = await asyncio.to_thread(RawSocket, api)
    assert " 101 " in stalled.status_line
    for interval in INTERVALS:
        stalled.send_text(
            json.dumps(
                {"op": "subscribe", "channel": "kline", "symbols": [symbol], "interval": interval}
            )
        )
    stalled.send_text(json.dumps({"op": "subscribe", "channel": "ticker", "symbols": [symbol]}))
    await asyncio.to_thread(stalled.read_until, b'"subscribed"', 7)
    dropped_before = await metric(api, "cryptochart_api_frames_dropped_total")
    count = 3000
    try:
        async with client(api) as healthy:
            await subscribe(healthy, "kline", [symbol], "1s")
            klines = [second(symbol, T1 + (i + 1) * 1000, i % 50) for i in range(count)]
            await asyncio.to_thread(produce, kafka, settings, klines)
            seen: list[int] = []
            async with asyncio.timeout(60):
                while len(seen) < count:
                    frame = json.loads(await healthy.recv())
                    if frame["type"] == "kline":
                        seen.append(frame["k"][0])
            assert seen == [k.open_time for k in klines]
        # The stalled client's frames outgrew the socket buffers and its bounded backlogs.
        assert await metric(api, "cryptochart_api_frames_dropped_total") > dropped_before
    finally:
        stalled.close()


async def test_bad_frames_get_errors_and_the_connection_stays(api: ApiServer, db: Conn) -> None:
    symbols = ["LIVEBAD1USDT", "LIVEBAD2USDT", "LIVEBAD3USDT"]
    insert_seconds(db, [second(s, T1, 0) for s in symbols])
    async with client(api) as ws:

        async def error_for(message: str | dict[str, object]) -> dict[str, object]:
            await ws.send(message if isinstance(message, str) else json.dumps(message))
            frame = await next_frame(ws, lambda f: f["type"] in ("error", "subscribed"))
            assert frame["type"] == "error", frame
            return frame

        assert (await error_for("not json"))["error"] == "bad_frame"
        assert (await error_for("[1, 2]"))["error"] == "bad_frame"
        frame = await error_for({"op": "dance"})
        assert frame["error"] == "bad_frame" and "$.op" in str(frame["detail"])
        frame = await error_for(
            {"op": "subscribe", "channel": "kline", "symbols": ["NOPEUSDT"], "interval": "1m"}
        )
        assert frame["error"] == "unknown_symbol" and "NOPEUSDT" in str(frame["detail"])
        frame = await error_for(
            {"op": "subscribe", "channel": "kline", "symbols": symbols[:1], "interval": "2m"}
        )
        assert frame["error"] == "unknown_interval"
        frame = await error_for({"op": "subscribe", "channel": "kline", "symbols": symbols[:1]})
        assert frame["error"] == "unknown_interval"
        frame = await error_for(
            {"op": "subscribe", "channel": "kline", "symbols": [], "interval": "1m"}
        )
        assert frame["error"] == "bad_frame"
        frame = await error_for({"op": "subscribe", "channel": "news", "symbols": symbols})
        assert frame["error"] == "bad_frame"
        # Nine channels in one go is over the limit of eight; nothing of it is applied.
        for interval in ("1m", "5m"):
            ack = await subscribe(ws, "kline", symbols, interval)
            assert ack["type"] == "subscribed"
        frame = await error_for(
            {"op": "subscribe", "channel": "kline", "symbols": symbols, "interval": "1h"}
        )
        assert frame["error"] == "too_many_subscriptions"
        ack = await subscribe(ws, "ticker", symbols[:2])
        assert ack["type"] == "subscribed"  # eight now
        frame = await error_for({"op": "subscribe", "channel": "ticker", "symbols": symbols[2:]})
        assert frame["error"] == "too_many_subscriptions"
        await send(ws, {"op": "ping"})
        assert (await next_frame(ws, lambda f: f["type"] == "pong")) == {"type": "pong"}
        await ws.send("x" * 2000)
        with pytest.raises(ConnectionClosed) as closed:
            await next_frame(ws, lambda f: False)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1009
        assert "1024 bytes" in closed.value.rcvd.reason


async def test_source_status_follows_the_header(
    api: ApiServer, db: Conn, kafka: Producer, settings: Settings
) -> None:
    symbol = "LIVESRCUSDT"
    insert_seconds(db, [second(symbol, T1, 0)])
    current = (await get_json(api, "/api/v1/status"))["source"]
    other = b"replay" if current != "replay" else b"binance"
    async with client(api) as ws:
        produce(kafka, settings, [second(symbol, T1 + 1000, 1)], source=other)
        frame = await next_frame(ws, lambda f: f["type"] == "status")
        assert frame == {"type": "status", "source": other.decode()}
    assert (await get_json(api, "/api/v1/status"))["source"] == other.decode()


async def test_origin_allow_list_and_server_pings(settings: Settings) -> None:
    config = replace(
        LIVE_CONFIG,
        ws_origins=("https://chart.example",),
        ws_ping_interval=0.3,
        ws_ping_timeout=0.5,
    )
    with serve(settings, config) as api:
        with pytest.raises(InvalidStatus) as rejected:
            async with connect(api.ws_url, origin="https://evil.example"):  # type: ignore[arg-type]
                pass
        assert rejected.value.response.status_code == 403
        async with connect(api.ws_url, origin="https://chart.example") as ws:  # type: ignore[arg-type]
            assert json.loads(await ws.recv())["type"] == "status"
        # A client that never answers pings is closed by the server.
        mute = await asyncio.to_thread(RawSocket, api, "https://chart.example", 65_536)
        try:
            assert " 101 " in mute.status_line
            await asyncio.to_thread(mute.read_to_end)
        finally:
            mute.close()


async def test_a_late_subscriber_sees_seconds_the_database_lacks_yet(
    api: ApiServer, db: Conn, kafka: Producer, settings: Settings
) -> None:
    """The inserter lags Kafka: the candle is the database's seconds plus those only on Kafka."""
    symbol = "LIVELAGUSDT"
    start = T1 + 7 * MINUTE
    stored = [second(symbol, start + i * 1000, i) for i in range(5)]
    insert_seconds(db, stored)
    only_on_kafka = [second(symbol, start + i * 1000, i) for i in range(5, 8)]
    async with client(api) as watcher:
        await subscribe(watcher, "kline", [symbol], "1s")
        produce(kafka, settings, only_on_kafka)
        await next_frame(watcher, lambda f: f["type"] == "kline" and f["k"][0] == start + 7000)
    async with client(api) as ws:
        await subscribe(ws, "kline", [symbol], "5m")
        snapshot = await next_frame(ws, lambda f: f["type"] == "kline")
        assert snapshot["k"] == folded_row(stored + only_on_kafka, start - 2 * MINUTE)


async def test_a_candle_with_a_hole_is_read_again_once_the_database_has_it(
    api: ApiServer, db: Conn, kafka: Producer, settings: Settings
) -> None:
    """Seconds neither stored nor seen by this API yet (it started after they were produced)
    are filled in when the database has them: the hub reads the candle again."""
    symbol = "LIVEHOLEUSDT"
    start = T1 + 2 * 3_600_000
    stored = [second(symbol, start + i * 1000, i) for i in range(5)]
    missing = [second(symbol, start + i * 1000, i) for i in range(5, 8)]
    insert_seconds(db, stored)
    seen_live = [second(symbol, start + i * 1000, i) for i in range(8, 10)]
    async with client(api) as watcher:
        await subscribe(watcher, "kline", [symbol], "1s")
        produce(kafka, settings, seen_live)
        await next_frame(watcher, lambda f: f["type"] == "kline" and f["k"][0] == start + 9000)
    async with client(api) as ws:
        await subscribe(ws, "kline", [symbol], "1h")
        snapshot = await next_frame(ws, lambda f: f["type"] == "kline")
        assert snapshot["k"] == folded_row(stored + seen_live, start)  # the hole shows
        insert_seconds(db, missing)  # the inserter catches up
        everything = stored + missing + seen_live
        async with asyncio.timeout(20):
            for i in range(10, 3600):
                k = second(symbol, start + i * 1000, i)
                everything.append(k)
                produce(kafka, settings, [k])
                frame = await next_frame(ws, lambda f: f["type"] == "kline")
                if frame["k"] == folded_row(everything, start):
                    break
                await asyncio.sleep(0.1)  # pacing the next probe, not waiting for a result
