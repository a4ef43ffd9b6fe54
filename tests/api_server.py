"""Helpers of the API tests: the app under uvicorn on a free port, rows written with SQL,
klines produced to Kafka, and WebSocket frames awaited with timeouts."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import uvicorn
from confluent_kafka import Producer
from websockets.asyncio.client import ClientConnection

from cryptochart.api.app import create_app
from cryptochart.api.config import ApiConfig
from cryptochart.api.history import to_datetime
from cryptochart.api.server import uvicorn_config
from cryptochart.core.database import Conn
from cryptochart.core.kline import Kline, encode
from cryptochart.core.settings import Settings
from cryptochart.devservices.ports import free_port
from tests.pipeline import stored_row

Frame = dict[str, Any]

# A test ``ApiConfig``: limits no test meets by accident.
TEST_CONFIG = ApiConfig(rate_limit_per_minute=1_000_000)


@dataclass(frozen=True)
class ApiServer:
    url: str

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/ws"


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` until true; fail after ``timeout`` seconds naming ``what``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


@contextmanager
def serve(settings: Settings, config: ApiConfig = TEST_CONFIG) -> Iterator[ApiServer]:
    """The app of ``settings`` under uvicorn in a thread, ready (database and Kafka) on entry."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn_config(
            create_app(settings, config),
            config,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
        )
    )
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    api = ApiServer(f"http://127.0.0.1:{port}")
    try:
        wait_for(lambda: server.started, 30, "uvicorn to start")
        wait_for(lambda: _ready(api), 60, "/ready to answer 200")
        yield api
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _ready(api: ApiServer) -> bool:
    try:
        return httpx.get(f"{api.url}/ready", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


# --- rows -------------------------------------------------------------------------------------


def kline(
    symbol: str,
    open_time: int,
    open_: str,
    high: str,
    low: str,
    close: str,
    volume: str = "1.00000000",
    *,
    trades: int = 3,
    closed: bool = True,
) -> Kline:
    """A 1s kline; the quote volumes are derived so that every field is distinct."""
    v = Decimal(volume)
    return Kline(
        symbol=symbol,
        open_time=open_time,
        close_time=open_time + 999,
        open=Decimal(open_),
        high=Decimal(high),
        low=Decimal(low),
        close=Decimal(close),
        volume=v,
        quote_volume=v * Decimal(close),
        trades=trades,
        taker_buy_base_volume=v / 2,
        taker_buy_quote_volume=v * Decimal(close) / 2,
        closed=closed,
        event_time=open_time + 1000,
    )


def insert_seconds(db: Conn, klines: list[Kline]) -> None:
    with db.cursor() as cur:
        cur.executemany(
            "INSERT INTO kline_1s VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [stored_row(k) for k in klines],
        )


ROLLUP_SOURCES = {"1m": "kline_1s", "5m": "kline_1m", "15m": "kline_5m", "1h": "kline_15m"}
ROLLUP_SOURCES["1d"] = "kline_1h"
BUCKETS = {"1s": "1 second", "1m": "1 minute", "5m": "5 minutes", "15m": "15 minutes"}
BUCKETS |= {"1h": "1 hour", "1d": "1 day"}

ROLLUP_SQL = """
INSERT INTO kline_{name}
SELECT symbol, date_bin('{bucket}', open_time, 'epoch') AS b, max(close_time),
       (array_agg(open ORDER BY open_time))[1], max(high), min(low),
       (array_agg(close ORDER BY open_time DESC))[1], sum(volume), sum(quote_volume),
       sum(trades)::bigint, sum(taker_buy_base_volume), sum(taker_buy_quote_volume), {seconds}
FROM {source}
WHERE symbol = %s AND open_time < %s
GROUP BY symbol, b
"""


def materialise(db: Conn, symbol: str, name: str, before: int) -> None:
    """What the minute job does, for the buckets of ``name`` opening before ``before`` (ms)."""
    source = ROLLUP_SOURCES[name]
    seconds = "count(*)" if source == "kline_1s" else "sum(seconds)"
    sql = ROLLUP_SQL.format(name=name, bucket=BUCKETS[name], seconds=seconds, source=source)
    db.execute(sql.encode(), (symbol, to_datetime(before)))


def truth(db: Conn, symbol: str, name: str) -> list[list[Any]]:
    """Every candle of ``name`` rolled up straight from kline_1s, as API rows."""
    rows = db.execute(
        f"""
        SELECT (extract(epoch FROM b) * 1000)::bigint,
               o::text, h::text, l::text, c::text, v::text,
               (extract(epoch FROM ct) * 1000)::bigint, qv::text, n, tb::text, tq::text
        FROM (SELECT date_bin('{BUCKETS[name]}', open_time, 'epoch') AS b,
                     (array_agg(open ORDER BY open_time))[1] AS o, max(high) AS h,
                     min(low) AS l, (array_agg(close ORDER BY open_time DESC))[1] AS c,
                     sum(volume) AS v, max(close_time) AS ct, sum(quote_volume) AS qv,
                     sum(trades)::bigint AS n, sum(taker_buy_base_volume) AS tb,
                     sum(taker_buy_quote_volume) AS tq
              FROM kline_1s WHERE symbol = %s GROUP BY b) t
        ORDER BY b
        """.encode(),
        (symbol,),
    ).fetchall()
    return [[*row, "0"] for row in rows]


# --- Kafka ------------------------------------------------------------------------------------


def producer(settings: Settings) -> Producer:
    return Producer({"bootstrap.servers": settings.kafka_bootstrap, "linger.ms": 5})


def produce(p: Producer, settings: Settings, klines: list[Kline], source: bytes = b"sim") -> None:
    for k in klines:
        p.produce(
            settings.klines_topic,
            key=k.symbol.encode(),
            value=encode(k),
            headers=[("source", source)],
        )
    remaining = p.flush(30)
    assert remaining == 0, f"{remaining} messages not delivered"


# --- WebSocket --------------------------------------------------------------------------------


async def next_frame(
    ws: ClientConnection, match: Callable[[Frame], bool], within: float = 15.0
) -> Frame:
    """The first frame ``match`` accepts; frames before it are skipped."""
    async with asyncio.timeout(within):
        while True:
            frame: Frame = json.loads(await ws.recv())
            if match(frame):
                return frame


async def frames_until(
    ws: ClientConnection, match: Callable[[Frame], bool], within: float = 15.0
) -> list[Frame]:
    """Every frame up to and including the first one ``match`` accepts."""
    seen: list[Frame] = []
    async with asyncio.timeout(within):
        while True:
            frame: Frame = json.loads(await ws.recv())
            seen.append(frame)
            if match(frame):
                return seen


async def send(ws: ClientConnection, message: dict[str, Any]) -> None:
    await ws.send(json.dumps(message))


async def subscribe(
    ws: ClientConnection, channel: str, symbols: list[str], interval: str | None = None
) -> Frame:
    """Subscribe and wait for the acknowledgement (frames before it are skipped)."""
    message: dict[str, Any] = {"op": "subscribe", "channel": channel, "symbols": symbols}
    if interval is not None:
        message["interval"] = interval
    await send(ws, message)
    return await next_frame(ws, lambda f: f["type"] in ("subscribed", "error"))


def live_row(k: Kline) -> list[Any]:
    """The ``k`` of a live frame for one kline."""
    return [
        k.open_time,
        format(k.open, "f"),
        format(k.high, "f"),
        format(k.low, "f"),
        format(k.close, "f"),
        format(k.volume, "f"),
        k.close_time,
        format(k.quote_volume, "f"),
        k.trades,
        format(k.taker_buy_base_volume, "f"),
        format(k.taker_buy_quote_volume, "f"),
    ]


def folded_row(klines: list[Kline], open_time: int) -> list[Any]:
    """The ``k`` of a candle opening at ``open_time`` made of ``klines`` (ascending)."""
    return [
        open_time,
        format(klines[0].open, "f"),
        format(max(k.high for k in klines), "f"),
        format(min(k.low for k in klines), "f"),
        format(klines[-1].close, "f"),
        format(sum(k.volume for k in klines), "f"),
        max(k.close_time for k in klines),
        format(sum(k.quote_volume for k in klines), "f"),
        sum(k.trades for k in klines),
        format(sum(k.taker_buy_base_volume for k in klines), "f"),
        format(sum(k.taker_buy_quote_volume for k in klines), "f"),
    ]


class RawSocket:
    """A WebSocket client by hand, which reads only when told to: a stalled or mute browser."""

    def __init__(self, api: ApiServer, origin: str | None = None, receive_buffer: int = 4096):
        host, port = api.url.removeprefix("http://").split(":")
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.settimeout(10)
        self.sock.connect((host, int(port)))
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        )
        if origin is not None:
            request += f"Origin: {origin}\r\n"
        self.sock.sendall((request + "\r\n").encode())
        self.received = b""
        while b"\r\n\r\n" not in self.received:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            self.received += chunk
        self.status_line = self.received.split(b"\r\n", 1)[0].decode()
        self.received = self.received.split(b"\r\n\r\n", 1)[-1]

    def send_text(self, text: str) -> None:
        payload = text.encode()
        assert len(payload) < 65_536
        header = bytes([0x81])  # FIN, text
        if len(payload) < 126:
            header += bytes([0x80 | len(payload)])
        else:
            header += bytes([0x80 | 126]) + len(payload).to_bytes(2, "big")
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def read_until(self, needle: bytes, count: int = 1) -> None:
        """Read raw bytes until ``needle`` has appeared ``count`` times in all read so far."""
        while self.received.count(needle) < count:
            chunk = self.sock.recv(65_536)
            if not chunk:
                raise AssertionError(f"closed before {needle!r} x{count}")
            self.received += chunk

    def read_to_end(self) -> bytes:
        """Everything until the server closes the connection."""
        while chunk := self.sock.recv(65_536):
            self.received += chunk
        return self.received

    def close(self) -> None:
        self.sock.close()


async def metric(api: ApiServer, name: str) -> float:
    """A counter or gauge of /metrics, summed over its labels."""
    async with httpx.AsyncClient(timeout=10) as http:
        text = (await http.get(f"{api.url}/metrics")).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and (line[len(name)] in " {"):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def get_json(api: ApiServer, path: str) -> Any:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(f"{api.url}{path}")
        response.raise_for_status()
        return response.json()
