"""Many live-chart clients in one process: ``python -m bench.ws_clients URL OUT --clients N …``.

Each client opens its own WebSocket to ``/ws`` (permessage-deflate offered, as browsers do), on
websockets' sans-I/O protocol (a lean client: the figure is the server's, not this process's),
subscribes to the 1s klines of one symbol (round robin over the symbols) and, once every client
is subscribed and ``ready`` is printed, records for each kline frame how long after the source
emitted it (``eventTime``) and after the API sent it (``sentTime``) this process read it, and
how long after ``eventTime`` its bytes arrived at the client's socket (the kernel's receive
time). Same machine, same clock: ``time.time()`` and the kernel's are both CLOCK_REALTIME.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import socket
import struct
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

CONNECT_CONCURRENCY = 50


class KlineFrame(msgspec.Struct, rename="camel"):
    type: str
    event_time: int = 0
    sent_time: int = 0
    snapshot: bool = False  # the state on subscribing: no latency sample, as on the page


_decode = msgspec.json.Decoder(KlineFrame).decode


@dataclass
class Tally:
    measuring: bool = False
    since_event: list[float] = field(default_factory=list)
    since_sent: list[float] = field(default_factory=list)
    arrived_since_event: list[float] = field(default_factory=list)
    event_times: list[int] = field(default_factory=list)
    frames: int = 0
    errors: list[str] = field(default_factory=list)
    loop_lag: list[float] = field(default_factory=list)


async def _watch_loop(tally: Tally, every: float = 0.005) -> None:
    """How late this process's own event loop wakes up: its share of the measured latency."""
    while True:
        due = time.perf_counter() + every
        await asyncio.sleep(every)
        if tally.measuring:
            tally.loop_lag.append((time.perf_counter() - due) * 1000)


# Linux: a received packet's arrival time (CLOCK_REALTIME, struct timespec) with each read.
SO_TIMESTAMPNS = 35
_TIMESPEC = struct.Struct("@qq")


class _Client:
    """One WebSocket client on websockets' sans-I/O protocol (its handshake, framing, masking and
    pongs), reading its socket itself: no task, queue or reassembly per frame, and with each
    read the kernel's time of the bytes' arrival, so that what this one process takes to read
    thousands of sockets on the same cores shows apart from the server's latency."""

    def __init__(self, url: str, symbol: str, tally: Tally, deflate: bool) -> None:
        extensions = [ClientPerMessageDeflateFactory()] if deflate else []
        self._uri = parse_uri(url)
        self._ws = ClientProtocol(self._uri, extensions=extensions, max_size=None)
        self._symbol = symbol
        self._tally = tally
        self._loop = asyncio.get_running_loop()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.subscribed: asyncio.Future[None] = self._loop.create_future()
        self.closed: asyncio.Future[None] = self._loop.create_future()

    async def open(self) -> None:
        sock = self._sock
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await self._loop.sock_connect(sock, (self._uri.host, self._uri.port))
        self._loop.add_reader(sock.fileno(), self._readable)
        self._ws.send_request(self._ws.connect())
        self._flush()
        await self.subscribed

    def _readable(self) -> None:
        try:
            data, ancillary, _, _ = self._sock.recvmsg(65_536, 64)
        except BlockingIOError:
            return
        except OSError as exc:
            self._lost(exc)
            return
        read = time.time() * 1000
        arrived = read
        for level, kind, value in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                seconds, nanoseconds = _TIMESPEC.unpack(value[: _TIMESPEC.size])
                arrived = seconds * 1000 + nanoseconds / 1e6
        if not data:
            self._ws.receive_eof()
            self._lost(None)
            return
        self._ws.receive_data(data)
        for event in self._ws.events_received():
            if isinstance(event, Response):
                self._subscribe()
            elif isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                self._frame(bytes(event.data), read, arrived)
        self._flush()

    def _subscribe(self) -> None:
        if self._ws.handshake_exc is not None:
            self._lost(self._ws.handshake_exc)
            return
        op = {"op": "subscribe", "channel": "kline", "symbols": [self._symbol], "interval": "1s"}
        self._ws.send_text(json.dumps(op).encode())

    def _frame(self, raw: bytes, read: float, arrived: float) -> None:
        frame = _decode(raw)
        tally = self._tally
        if frame.type == "subscribed" and not self.subscribed.done():
            self.subscribed.set_result(None)
        elif frame.type == "kline" and not frame.snapshot and tally.measuring:
            tally.frames += 1
            tally.since_event.append(read - frame.event_time)
            tally.since_sent.append(read - frame.sent_time)
            tally.arrived_since_event.append(arrived - frame.event_time)
            tally.event_times.append(frame.event_time)

    def _flush(self) -> None:
        output = b"".join(self._ws.data_to_send())
        if output and self._sock.fileno() >= 0:
            self._sock.send(output)  # a subscribe, pong or close: far below the send buffer

    def _lost(self, exc: BaseException | None) -> None:
        if self._sock.fileno() >= 0:
            self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
        if self._tally.measuring:  # a dropped client is a result, not a crash
            self._tally.errors.append(f"connection lost: {exc or self._ws.close_code}")
        if not self.subscribed.done():
            self.subscribed.set_exception(exc or ConnectionError("closed before subscribing"))
        if not self.closed.done():
            self.closed.set_result(None)

    def close(self) -> None:
        if self._ws.state is State.OPEN:
            self._ws.send_close(1000)
            self._flush()


async def _open(
    url: str, symbol: str, gate: asyncio.Semaphore, tally: Tally, deflate: bool
) -> _Client:
    async with gate, asyncio.timeout(60):
        client = _Client(url, symbol, tally, deflate)
        try:
            await client.open()
        except BaseException as exc:
            client._lost(exc)
            raise
        return client


async def run(
    url: str, symbols: list[str], clients: int, seconds: float, deflate: bool = True
) -> dict[str, object]:
    tally = Tally()
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    started = time.monotonic()
    opened = await asyncio.gather(
        *(_open(url, symbols[i % len(symbols)], gate, tally, deflate) for i in range(clients)),
        return_exceptions=True,
    )
    sockets = [ws for ws in opened if isinstance(ws, _Client)]
    tally.errors += [repr(e) for e in opened if isinstance(e, BaseException)][:5]
    connect_seconds = time.monotonic() - started
    # This process's own collector would stop every client at once (a full pass over 5,000
    # clients' objects is hundreds of ms, counted as the server's latency): what is built so far
    # lives to the end, and what measuring adds is freed by reference counting.
    gc.collect()
    gc.freeze()
    gc.disable()
    watcher = asyncio.create_task(_watch_loop(tally))
    await asyncio.sleep(2.0)  # let snapshots and the first backlog drain before measuring
    print("ready", len(sockets), flush=True)
    tally.measuring = True
    await asyncio.sleep(seconds)
    tally.measuring = False
    for ws in sockets:
        ws.close()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(10):
            await asyncio.gather(*(ws.closed for ws in sockets))
    watcher.cancel()
    return {
        "subscribed": len(sockets),
        "connect_seconds": connect_seconds,
        "frames": tally.frames,
        "since_event_ms": tally.since_event,
        "since_sent_ms": tally.since_sent,
        "arrived_since_event_ms": tally.arrived_since_event,
        "event_times": tally.event_times,
        "loop_lag_ms": tally.loop_lag,
        "errors": tally.errors[:10],
        "error_count": len(tally.errors),
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ws_clients", description=__doc__)
    parser.add_argument("url", help="ws://host:port/ws")
    parser.add_argument("out", type=Path, help="JSON file for the results")
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--symbols", required=True, help="comma-separated")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long to measure")
    parser.add_argument("--no-deflate", action="store_true", help="do not offer permessage-deflate")
    args = parser.parse_args()
    symbols = args.symbols.split(",")
    result = asyncio.run(
        run(args.url, symbols, args.clients, args.seconds, deflate=not args.no_deflate)
    )
    args.out.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
