"""Frames written straight to a connection (api/wire.py, api/server.py): the bytes parse as
WebSocket frames, and under the product's uvicorn setup a connection's writer reaches a real
client, stops at a client that does not read, and refuses once the connection is closing."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import uvicorn
from websockets.asyncio.client import connect
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from cryptochart.api.config import ApiConfig
from cryptochart.api.server import uvicorn_config
from cryptochart.api.wire import EXTENSION, Write, Written, text_frame, writer_of
from cryptochart.devservices.ports import free_port
from tests.api_server import wait_for


def parsed(data: bytes) -> Frame:
    """``data`` read back by websockets' own frame parser, as a client reads it (unmasked)."""
    reader = StreamReader()
    reader.feed_data(data)
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
    except StopIteration as done:
        frame: Frame = done.value
        assert not reader.buffer, "bytes left over after the frame"
        return frame
    raise AssertionError("the parser wanted more bytes than the frame has")


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65_535, 65_536, 300_000])
def test_a_text_frame_parses_back_to_its_payload_at_every_length_encoding(size: int) -> None:
    payload = (b'{"k":"' + b"x" * size)[:size]
    frame = parsed(text_frame(payload))
    assert frame.opcode is Opcode.TEXT
    assert frame.fin
    assert frame.data == payload


def test_the_writer_is_found_only_where_a_server_offers_it() -> None:
    def write(frame: bytes) -> Written:
        return Written.SENT

    assert writer_of({"extensions": {EXTENSION: {"write": write}}}) is write
    assert writer_of({"extensions": {"websocket.http.response": {}}}) is None
    assert writer_of({"extensions": None}) is None
    assert writer_of({}) is None


class Echo:
    """An ASGI app that keeps each connection's writer and waits to be told to close it."""

    def __init__(self) -> None:
        self.writers: list[Write | None] = []
        self.close = asyncio.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "websocket"
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        self.writers.append(writer_of(scope))
        await self.close.wait()
        await send({"type": "websocket.close", "code": 1000})


@contextmanager
def served(app: Echo) -> Iterator[tuple[str, asyncio.AbstractEventLoop]]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn_config(app, ApiConfig(), host="127.0.0.1", port=port, lifespan="off")
    )
    loops: list[asyncio.AbstractEventLoop] = []

    def run() -> None:
        loop = asyncio.new_event_loop()
        loops.append(loop)
        loop.run_until_complete(server.serve())

    thread = threading.Thread(target=run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, 30, "uvicorn to start")
        yield f"ws://127.0.0.1:{port}/", loops[0]
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def call(loop: asyncio.AbstractEventLoop, write: Write, frame: bytes) -> Written:
    """``write`` run on the server's loop, as the fan-out runs it."""
    result = asyncio.run_coroutine_threadsafe(_call(write, frame), loop)
    return result.result(timeout=10)


async def _call(write: Write, frame: bytes) -> Written:
    return write(frame)


async def test_frames_written_straight_reach_the_client_in_order() -> None:
    app = Echo()
    with served(app) as (url, loop):
        async with connect(url, compression=None) as ws:
            await asyncio.to_thread(wait_for, lambda: bool(app.writers), 10, "the connection")
            write = app.writers[0]
            assert write is not None
            for text in ("first", "second", "x" * 70_000):
                assert call(loop, write, text_frame(text.encode())) is Written.SENT
            assert [await ws.recv() for _ in range(3)] == ["first", "second", "x" * 70_000]
            app.close.set()
            await ws.wait_closed()
        await asyncio.to_thread(
            wait_for,
            lambda: call(loop, write, text_frame(b"late")) is Written.CLOSED,
            10,
            "the closed connection to refuse frames",
        )


async def _until_busy(write: Write, frame: bytes, most: int) -> int:
    for written in range(most):
        if write(frame) is not Written.SENT:
            return written
    return most


async def test_a_client_that_does_not_read_makes_the_writer_busy_not_unbounded() -> None:
    app = Echo()
    frame = text_frame(b"y" * 4096)
    most = 16_384  # 64 MB offered: past the kernel's buffers on both ends
    with served(app) as (url, loop):
        # The client reads nothing (its queue holds one message): the server's transport fills.
        async with connect(url, compression=None, max_queue=1) as ws:
            await asyncio.to_thread(wait_for, lambda: bool(app.writers), 10, "the connection")
            write = app.writers[0]
            assert write is not None
            done = asyncio.run_coroutine_threadsafe(_until_busy(write, frame, most), loop)
            written = done.result(timeout=30)
            assert 0 < written < most
            assert call(loop, write, frame) is Written.BUSY  # until the client reads again
            app.close.set()
            ws.transport.abort()
