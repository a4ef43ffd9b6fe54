"""Many live-chart clients in one process: ``python -m bench.ws_clients URL OUT --clients N …``.

Each client opens its own WebSocket to ``/ws`` (permessage-deflate offered, as browsers do), on
websockets' sans-I/O protocol (a lean client: the figure is the server's, not this process's),
subscribes to the 1s klines of one symbol (round robin over the symbols) and, once every client
is subscribed and ``ready`` is printed, records for each kline frame how long after the source
emitted it (``eventTime``) and after the API sent it (``sentTime``) it arrived. Same machine,
same clock: ``time.time()``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
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


class _Client(asyncio.Protocol):
    """One WebSocket client on websockets' sans-I/O protocol: its handshake, framing, masking and
    pongs, with no task, queue or reassembly per frame (a lean client, so that the figure is the
    server's, not the clients' process's). Arrival time: when the frame's bytes are read."""

    def __init__(self, url: str, symbol: str, tally: Tally, deflate: bool) -> None:
        extensions = [ClientPerMessageDeflateFactory()] if deflate else []
        self._ws = ClientProtocol(parse_uri(url), extensions=extensions, max_size=None)
        self._symbol = symbol
        self._tally = tally
        self._transport: asyncio.Transport | None = None
        self.subscribed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._ws.send_request(self._ws.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        now = time.time() * 1000
        self._ws.receive_data(data)
        for event in self._ws.events_received():
            if isinstance(event, Response):
                self._subscribe()
            elif isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                self._frame(bytes(event.data), now)
        self._flush()

    def _subscribe(self) -> None:
        if self._ws.handshake_exc is not None:
            self._fail(self._ws.handshake_exc)
            return
        op = {"op": "subscribe", "channel": "kline", "symbols": [self._symbol], "interval": "1s"}
        self._ws.send_text(json.dumps(op).encode())

    def _frame(self, raw: bytes, now: float) -> None:
        frame = _decode(raw)
        tally = self._tally
        if frame.type == "subscribed" and not self.subscribed.done():
            self.subscribed.set_result(None)
        elif frame.type == "kline" and not frame.snapshot and tally.measuring:
            tally.frames += 1
            tally.since_event.append(now - frame.event_time)
            tally.since_sent.append(now - frame.sent_time)
            tally.event_times.append(frame.event_time)

    def _flush(self) -> None:
        if self._transport is not None:
            output = self._ws.data_to_send()
            if output:
                self._transport.write(b"".join(output))

    def _fail(self, exc: BaseException) -> None:
        if not self.subscribed.done():
            self.subscribed.set_exception(exc)
        if self._transport is not None:
            self._transport.close()

    def eof_received(self) -> None:
        self._ws.receive_eof()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._tally.measuring:  # a dropped client is a result, not a crash
            self._tally.errors.append(f"connection lost: {exc or self._ws.close_code}")
        self._fail(exc or ConnectionError("closed before the subscription was acknowledged"))
        if not self.closed.done():
            self.closed.set_result(None)

    def close(self) -> None:
        if self._ws.state is State.OPEN:
            self._ws.send_close(1000)
            self._flush()


async def _open(
    url: str, symbol: str, gate: asyncio.Semaphore, tally: Tally, deflate: bool
) -> _Client:
    uri = parse_uri(url)
    async with gate, asyncio.timeout(60):
        loop = asyncio.get_running_loop()
        _, client = await loop.create_connection(
            lambda: _Client(url, symbol, tally, deflate), uri.host, uri.port
        )
        await client.subscribed
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
