"""The fan-out's outboxes: order, the bound that drops a slow client's oldest frames, a client
that has gone, and frames written straight to a connection that takes them. Sockets are stood
in for by send and write functions; tests/test_api_live.py runs the same path through the API
with real WebSocket clients, tests/test_wire.py the server's writer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import NamedTuple

from prometheus_client import REGISTRY

from cryptochart.api.fanout import Fanout, Outbox
from cryptochart.api.wire import Written
from tests.test_wire import parsed


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


class Socket(NamedTuple):
    client: Client
    outbox: Outbox
    writer: asyncio.Task[None]


@asynccontextmanager
async def socket(limit: int) -> AsyncIterator[Socket]:
    """A client, its outbox of ``limit`` frames and the outbox's writer task."""
    client = Client()
    outbox = Outbox(client.send, limit)
    writer = asyncio.create_task(outbox.run())
    try:
        yield Socket(client, outbox, writer)
    finally:
        writer.cancel()


async def test_frames_are_sent_in_order_as_they_come() -> None:
    async with socket(limit=10) as (client, outbox, _):
        for i in range(5):
            outbox.put(b"%d" % i)
        await client.wait_for(5)
        outbox.put(b"later")
        await client.wait_for(6)
    assert client.received == [b"0", b"1", b"2", b"3", b"4", b"later"]


async def test_a_slow_client_loses_its_oldest_frames_beyond_the_bound() -> None:
    async with socket(limit=4) as (client, outbox, _):
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
        outbox.limit = 2  # the client unfollowed channels: its bound shrinks with them
        outbox.put(b"10")
        assert len(outbox) == 2
        assert dropped() - before == 9
        client.reading.set()
        await client.wait_for(4)
    assert client.received == [b"first", b"in flight", b"9", b"10"]


async def test_a_gone_client_ends_its_writer_and_takes_nothing_more() -> None:
    async with socket(limit=4) as (client, outbox, writer):
        client.gone = True
        outbox.put(b"lost")
        async with asyncio.timeout(5):
            await writer  # returns: no exception escapes the writer
        assert outbox.closed
        outbox.put(b"after")
        assert len(outbox) == 0


async def test_published_frames_reach_only_the_channels_followers() -> None:
    fanout = Fanout()
    async with socket(limit=10) as a, socket(limit=10) as b:
        fanout.subscribe("kline:BTCUSDT:1s", a.outbox)
        fanout.subscribe("kline:BTCUSDT:1s", b.outbox)
        fanout.subscribe("ticker:ETHUSDT", b.outbox)
        fanout.publish(b"btc", "kline:BTCUSDT:1s")
        fanout.publish(b"eth", "ticker:ETHUSDT")
        fanout.publish(b"nobody", "kline:XRPUSDT:1s")
        await a.client.wait_for(1)
        await b.client.wait_for(2)
        fanout.unsubscribe("kline:BTCUSDT:1s", a.outbox)
        fanout.unsubscribe("kline:XRPUSDT:1s", a.outbox)  # not followed: nothing happens
        fanout.publish(b"btc again", "kline:BTCUSDT:1s")
        await b.client.wait_for(3)
    assert a.client.received == [b"btc"]
    assert b.client.received == [b"btc", b"eth", b"btc again"]


class Connection:
    """Stands in for a server's frame writer (api/server.py): takes whole frames while ``state``
    is SENT; while BUSY or CLOSED it takes nothing and says so."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.state = Written.SENT

    def write(self, frame: bytes) -> Written:
        if self.state is Written.SENT:
            self.frames.append(frame)
        return self.state

    def payloads(self) -> list[bytes]:
        return [bytes(parsed(frame).data) for frame in self.frames]


@asynccontextmanager
async def direct_socket(limit: int) -> AsyncIterator[tuple[Connection, Socket]]:
    """A socket whose server offers frames written straight to the connection."""
    connection = Connection()
    client = Client()
    outbox = Outbox(client.send, limit, connection.write)
    writer = asyncio.create_task(outbox.run())
    try:
        yield connection, Socket(client, outbox, writer)
    finally:
        writer.cancel()


def sent_total() -> float:
    return REGISTRY.get_sample_value("cryptochart_api_frames_sent_total") or 0.0


async def test_published_frames_are_written_straight_framed_once_for_all_followers() -> None:
    fanout = Fanout()
    async with (
        direct_socket(limit=10) as (a, a_socket),
        direct_socket(limit=10) as (b, b_socket),
        direct_socket(limit=10) as (other, other_socket),
    ):
        fanout.subscribe("kline:BTCUSDT:1s", a_socket.outbox)
        fanout.subscribe("kline:BTCUSDT:1s", b_socket.outbox)
        fanout.subscribe("ticker:ETHUSDT", other_socket.outbox)
        before = sent_total()
        fanout.publish(b'{"n":1}', "kline:BTCUSDT:1s")
        fanout.publish(b'{"n":2}', "kline:BTCUSDT:1s")
        # Written during publish, with no task in between, and counted as sent.
        assert a.payloads() == b.payloads() == [b'{"n":1}', b'{"n":2}']
        assert other.frames == []
        assert sent_total() - before == 4
        assert a.frames[0] is b.frames[0]  # framed once for every follower
        assert not a_socket.client.received and not b_socket.client.received  # no slow path


async def test_a_busy_connection_queues_and_later_frames_never_overtake() -> None:
    async with direct_socket(limit=10) as (connection, (client, outbox, _)):
        assert outbox.put(b"1")
        connection.state = Written.BUSY  # over its high-water mark
        assert not outbox.put(b"2")
        client.reading.clear()  # the writer task takes "2" and blocks sending it
        await asyncio.sleep(0)
        connection.state = Written.SENT  # the connection could take frames again ...
        assert not outbox.put(b"3")  # ... but "2" is still on its way: "3" waits behind it
        assert len(outbox) == 1
        client.reading.set()
        await client.wait_for(2)
        assert outbox.put(b"4")  # the queue is empty again: straight to the connection
    assert connection.payloads() == [b"1", b"4"]
    assert client.received == [b"2", b"3"]


async def test_a_closed_connection_closes_the_outbox() -> None:
    async with direct_socket(limit=10) as (connection, (client, outbox, _)):
        connection.state = Written.CLOSED
        assert not outbox.put(b"lost")
        assert outbox.closed
        connection.state = Written.SENT
        assert not outbox.put(b"after")
        assert len(outbox) == 0
    assert connection.frames == [] and client.received == []
