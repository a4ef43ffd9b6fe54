"""Many live-chart clients in one process: ``python -m bench.ws_clients URL OUT --clients N …``.

Each client opens its own WebSocket to ``/ws`` (permessage-deflate offered, as browsers do),
subscribes to the 1s klines of one symbol (round robin over the symbols) and, once every client
is subscribed and ``ready`` is printed, records for each kline frame how long after the source
emitted it (``eventTime``) and after the API sent it (``sentTime``) it arrived. Same machine,
same clock: ``time.time()``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
from websockets.asyncio.client import ClientConnection, connect

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


async def _open(url: str, symbol: str, gate: asyncio.Semaphore, deflate: bool) -> ClientConnection:
    async with gate:
        compression = "deflate" if deflate else None
        ws = await connect(
            url, proxy=None, open_timeout=60, max_queue=None, compression=compression
        )
        await ws.send(
            json.dumps(
                {"op": "subscribe", "channel": "kline", "symbols": [symbol], "interval": "1s"}
            )
        )
        async for raw in ws:  # status first, then the acknowledgement
            if _decode(raw).type == "subscribed":
                return ws
        raise ConnectionError("closed before the subscription was acknowledged")


async def _listen(ws: ClientConnection, tally: Tally) -> None:
    try:
        async for raw in ws:
            now = time.time() * 1000
            frame = _decode(raw)
            if frame.type == "kline" and not frame.snapshot and tally.measuring:
                tally.frames += 1
                tally.since_event.append(now - frame.event_time)
                tally.since_sent.append(now - frame.sent_time)
                tally.event_times.append(frame.event_time)
    except Exception as exc:  # a dropped client is a result, not a crash
        tally.errors.append(f"{type(exc).__name__}: {exc}")


async def run(
    url: str, symbols: list[str], clients: int, seconds: float, deflate: bool = True
) -> dict[str, object]:
    tally = Tally()
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    started = time.monotonic()
    opened = await asyncio.gather(
        *(_open(url, symbols[i % len(symbols)], gate, deflate) for i in range(clients)),
        return_exceptions=True,
    )
    sockets = [ws for ws in opened if isinstance(ws, ClientConnection)]
    tally.errors += [repr(e) for e in opened if isinstance(e, BaseException)][:5]
    connect_seconds = time.monotonic() - started
    listeners = [asyncio.create_task(_listen(ws, tally)) for ws in sockets]
    listeners.append(asyncio.create_task(_watch_loop(tally)))
    await asyncio.sleep(2.0)  # let snapshots and the first backlog drain before measuring
    print("ready", len(sockets), flush=True)
    tally.measuring = True
    await asyncio.sleep(seconds)
    tally.measuring = False
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    for task in listeners:
        task.cancel()
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
