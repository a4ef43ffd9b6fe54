"""One client address hammering the API: ``python -m bench.flood_client ROOT OUT --seconds S …``.

Flat out, from one address, for ``--seconds``: REST history pages, every symbol's ticker, klines
of unknown but well-formed symbols and ``/ready`` in tight loops; WebSockets opened up to and past
the per-address cap and held; on them, subscribe/unsubscribe loops just within the per-socket
message rate, and bursts past it (the API closes those; they are opened again). Writes what the
API answered, counted by kind, and the time each kind of request took, to OUT as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

REST_WORKERS = 16
CHURN_MARGIN = 5  # messages a second under the per-socket rate that the churning sockets keep
BURST = 60  # messages sent at once by a socket meant to break the per-socket rate


def _rest_paths(symbols: list[str]) -> dict[str, list[str]]:
    unknown = [f"ZZ{i:04d}USDT" for i in range(500)]  # well-formed, in no store
    return {
        "history": [
            f"/api/v1/klines?symbol={s}&interval={i}&limit=1000"
            for s in symbols
            for i in ("1s", "1m")
        ],
        "ticker": ["/api/v1/ticker"],
        "unknown symbol": [f"/api/v1/klines?symbol={u}&interval=1m&limit=500" for u in unknown],
        "ready": ["/ready"],
    }


async def _rest(
    root: str, symbols: list[str], until: float, tally: Counter[str], spent: Counter[str]
) -> None:
    paths = _rest_paths(symbols)
    kinds = itertools.cycle(paths)
    cursors = {kind: itertools.cycle(p) for kind, p in paths.items()}
    limits = httpx.Limits(max_connections=REST_WORKERS, max_keepalive_connections=REST_WORKERS)
    async with httpx.AsyncClient(base_url=root, limits=limits, timeout=30) as client:

        async def worker() -> None:
            while time.monotonic() < until:
                kind = next(kinds)
                started = time.perf_counter()
                try:
                    response = await client.get(next(cursors[kind]))
                    tally[f"{kind} {response.status_code}"] += 1
                except httpx.HTTPError as exc:
                    tally[f"{kind} {type(exc).__name__}"] += 1
                spent[kind] += round((time.perf_counter() - started) * 1000)

        await asyncio.gather(*(worker() for _ in range(REST_WORKERS)))


async def _open(url: str, tally: Counter[str]) -> ClientConnection | None:
    """A socket the API kept open (its status frame read), or None if it refused."""
    try:
        ws = await connect(url, proxy=None, open_timeout=10, compression=None)
    except (OSError, InvalidStatus, TimeoutError) as exc:
        tally[f"socket refused at handshake ({type(exc).__name__})"] += 1
        return None
    try:
        await asyncio.wait_for(ws.recv(), 10)
    except ConnectionClosed as exc:
        code = exc.rcvd.code if exc.rcvd else "none"
        tally[f"socket closed on opening, code {code}"] += 1
        return None
    except TimeoutError:
        tally["socket silent on opening"] += 1
        await ws.close()
        return None
    tally["socket opened"] += 1
    return ws


def _op(op: str, symbol: str) -> str:
    return json.dumps({"op": op, "channel": "kline", "symbols": [symbol], "interval": "1s"})


async def _drain(ws: ClientConnection) -> None:
    async for _ in ws:
        pass


async def _churn(
    url: str, symbols: list[str], per_second: int, until: float, tally: Counter[str]
) -> None:
    """Subscribe and unsubscribe in a loop, a few messages a second under the per-socket rate
    (a socket closed anyway, when its sends bunch up on a busy box, is opened again)."""
    pause = 1.0 / max(1, per_second - CHURN_MARGIN)
    names = itertools.cycle(symbols)
    while time.monotonic() < until:
        ws = await _open(url, tally)
        if ws is None:
            await asyncio.sleep(0.1)
            continue
        reader = asyncio.create_task(_drain(ws))
        try:
            while time.monotonic() < until:
                symbol = next(names)
                for op in ("subscribe", "unsubscribe"):
                    await ws.send(_op(op, symbol))
                    tally["churn messages"] += 1
                    await asyncio.sleep(pause)
        except ConnectionClosed as exc:
            tally[f"churn socket closed, code {exc.rcvd.code if exc.rcvd else 'none'}"] += 1
        finally:
            reader.cancel()
            await ws.close()


async def _burst(url: str, symbols: list[str], until: float, tally: Counter[str]) -> None:
    """Open a socket, send BURST messages at once, see it closed; again until ``until``."""
    while time.monotonic() < until:
        ws = await _open(url, tally)
        if ws is None:
            await asyncio.sleep(0.1)
            continue
        try:
            for i in range(BURST):
                await ws.send(_op("subscribe" if i % 2 == 0 else "unsubscribe", symbols[0]))
            await asyncio.wait_for(_drain(ws), 10)
            code = ws.close_code
            tally[f"burst socket closed, code {code}"] += 1
        except ConnectionClosed as exc:
            tally[f"burst socket closed, code {exc.rcvd.code if exc.rcvd else 'none'}"] += 1
        except TimeoutError:
            tally["burst socket left open"] += 1
        finally:
            await ws.close()


async def _hold(url: str, until: float, tally: Counter[str]) -> None:
    """Keep opening sockets past the cap and holding the ones admitted."""
    held: list[ClientConnection] = []
    while time.monotonic() < until:
        ws = await _open(url, tally)
        if ws is not None:
            held.append(ws)
        else:
            await asyncio.sleep(0.05)
    tally["sockets held at the end"] = len(held)
    await asyncio.gather(*(ws.close() for ws in held), return_exceptions=True)


async def flood(
    root: str, symbols: list[str], seconds: float, per_address: int, per_second: int
) -> dict[str, dict[str, int]]:
    """What the API answered, counted by kind (``counts``), and the milliseconds the REST
    requests of each kind took in all (``rest_ms``)."""
    tally: Counter[str] = Counter()
    spent: Counter[str] = Counter()
    url = root.replace("http://", "ws://") + "/ws"
    until = time.monotonic() + seconds
    print("flooding", flush=True)
    churners = max(1, per_address // 2)
    await asyncio.gather(
        _rest(root, symbols, until, tally, spent),
        *(_churn(url, symbols, per_second, until, tally) for _ in range(churners)),
        *(_burst(url, symbols, until, tally) for _ in range(4)),
        _hold(url, until, tally),
    )
    return {"counts": dict(sorted(tally.items())), "rest_ms": dict(spent)}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.flood_client", description=__doc__)
    parser.add_argument("root", help="http://host:port")
    parser.add_argument("out", type=Path, help="JSON file for the counts")
    parser.add_argument("--symbols", required=True, help="comma-separated, streamed ones")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--per-address", type=int, required=True, help="the API's socket cap")
    parser.add_argument("--per-second", type=int, required=True, help="the API's message rate")
    args = parser.parse_args()
    result = asyncio.run(
        flood(args.root, args.symbols.split(","), args.seconds, args.per_address, args.per_second)
    )
    args.out.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
