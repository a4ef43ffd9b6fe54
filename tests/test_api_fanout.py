"""The fan-out's outboxes: order, the bound that drops a slow client's oldest frames, and a client
that has gone. Sockets are stood in for by send functions; tests/test_api_live.py runs the same
path through the API with real WebSocket clients."""

from __future__ import annotations

import asyncio

from prometheus_client import REGISTRY

from cryptochart.api.fanout import Fanout, Outbox


def dropped() -> float:
    return REGISTRY.get_sample_value("cryptochart_api_frames_dropped_total") or 0.0


class Client:
    """Records what it is sent; blocks while ``reading`` is clear, fails when ``gone``."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.reading = asyncio.Event()
        self.reading.set()
        self.gone = False
        self.arrived = asyncio.Condition()

    async def send(self, data: bytes) -> None:
        await self.reading.wait()
        if self.gone:
            raise ConnectionResetError("client gone")
        async with self.arrived:
            self.received.append(data)
            self.arrived.notify_all()

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(5), self.arrived:
            await self.arrived.wait_for(lambda: len(self.received) >= count)


async def test_frames_are_sent_in_order_as_they_come() -> None:
    client = Client()
    outbox = Outbox(client.send, limit=10)
    writer = asyncio.create_task(outbox.run())
    for i in range(5):
        outbox.put(b"%d" % i)
    await client.wait_for(5)
    outbox.put(b"later")
    await client.wait_for(6)
    assert client.received == [b"0", b"1", b"2", b"3", b"4", b"later"]
    writer.cancel()


async def test_a_slow_client_loses_its_oldest_frames_beyond_the_bound() -> None:
    client = Client()
    outbox = Outbox(client.send, limit=4)
    writer = asyncio.create_task(outbox.run())
    outbox.put(b"first")
    await client.wait_for(1)
    client.reading.clear()  # the client stops reading
    outbox.put(b"in flight")  # the writer takes it and blocks on the socket
    await asyncio.sleep(0)
    before = dropped()
    for i in range(10):
        outbox.put(b"%d" % i)
    assert len(outbox) == 4
    assert dropped() - before == 6
    client.reading.set()
    await client.wait_for(6)
    assert client.received == [b"first", b"in flight", b"6", b"7", b"8", b"9"]
    writer.cancel()


async def test_a_gone_client_ends_its_writer_and_takes_nothing_more() -> None:
    client = Client()
    outbox = Outbox(client.send, limit=4)
    writer = asyncio.create_task(outbox.run())
    client.gone = True
    outbox.put(b"lost")
    async with asyncio.timeout(5):
        await writer  # returns: no exception escapes the writer
    assert outbox.closed
    outbox.put(b"after")
    assert len(outbox) == 0


async def test_published_frames_reach_only_the_channels_followers() -> None:
    fanout = Fanout()
    a, b = Client(), Client()
    box_a, box_b = Outbox(a.send, limit=10), Outbox(b.send, limit=10)
    writers = [asyncio.create_task(box.run()) for box in (box_a, box_b)]
    fanout.subscribe("kline:BTCUSDT:1s", box_a)
    fanout.subscribe("kline:BTCUSDT:1s", box_b)
    fanout.subscribe("ticker:ETHUSDT", box_b)
    fanout.publish(b"btc", "kline:BTCUSDT:1s")
    fanout.publish(b"eth", "ticker:ETHUSDT")
    fanout.publish(b"nobody", "kline:XRPUSDT:1s")
    await a.wait_for(1)
    await b.wait_for(2)
    fanout.unsubscribe("kline:BTCUSDT:1s", box_a)
    fanout.unsubscribe("kline:XRPUSDT:1s", box_a)  # not followed: nothing happens
    fanout.publish(b"btc again", "kline:BTCUSDT:1s")
    await b.wait_for(3)
    assert a.received == [b"btc"]
    assert b.received == [b"btc", b"eth", b"btc again"]
    for writer in writers:
        writer.cancel()
