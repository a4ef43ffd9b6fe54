"""A fake Binance speaking the real wire formats, on one local port, for tests and fault drills.

WebSocket combined streams (``/stream?streams=btcusdt@kline_1s/...``, SUBSCRIBE requests, pings
whose pongs must echo the payload, ``serverShutdown`` notices, connections cut on demand) and REST
``/api/v3/ping``, ``/api/v3/time``, ``/api/v3/klines`` (with 429/418 + ``Retry-After`` on
demand) and ``/api/v3/exchangeInfo`` (each symbol's PRICE_FILTER tick size and LOT_SIZE step, the
grids its klines lie on) serve the same deterministic market (:mod:`tests.fakes.market`). Its
clock may run faster than real time (``speed``), so a test sees minutes of klines in seconds.

In process::

    async with FakeBinance(speed=50) as fake:
        source = BinanceSource(["BTCUSDT"], ws_url=fake.ws_url, rest_url=fake.rest_url)

As a subprocess (prints one JSON line with its URLs, stops on SIGTERM), controlled by HTTP GET:
``/fake/drop?outage_ms=``, ``/fake/server-shutdown?close_after_ms=``,
``/fake/throttle?requests=&retry_after=&status=`` and ``/fake/stats``::

    python -m tests.fakes.binance --port 9443 --speed 1
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email.utils
import http
import json
import os
import re
import signal
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import msgspec
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from cryptochart.core.kline import Kline
from tests.fakes.market import LOT_SIZE, in_progress, kline_at, tick_size

_STREAM = re.compile(r"([a-z0-9]{1,20})@kline_1s")
_DEFAULT_LIMIT, _MAX_LIMIT = 500, 1000
# What exchangeInfo lists without a symbol parameter; any other symbol is listed when asked for.
LISTED = ("BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT")


class FakeClock:
    """Exchange time in ms, running ``speed`` times faster than the machine's clock."""

    def __init__(self, start_ms: int, speed: float) -> None:
        self.start_ms = start_ms
        self.speed = speed
        self._started = time.monotonic()

    def now_ms(self) -> int:
        return self.start_ms + int((time.monotonic() - self._started) * 1000 * self.speed)

    async def sleep_until(self, at_ms: int) -> None:
        wait = (at_ms - self.now_ms()) / 1000 / self.speed
        if wait > 0:
            await asyncio.sleep(wait)


@dataclass
class FakeStats:
    """What the fake saw; tests wait on these through :meth:`FakeBinance.wait_until`."""

    connections_opened: int = 0
    connections_open: int = 0
    most_connections_open: int = 0
    rejected_handshakes: int = 0
    streams_per_connection: list[int] = field(default_factory=list)
    subscribe_requests: int = 0
    rate_limit_violations: int = 0
    server_shutdowns_sent: int = 0
    connections_dropped: int = 0
    pings_sent: int = 0
    pongs_matched: int = 0
    pongs_missing: int = 0
    rest_requests: dict[str, int] = field(default_factory=dict)  # by path
    throttled_requests: int = 0


@dataclass(eq=False)
class _Client:
    ws: ServerConnection
    streams: set[str]
    received: deque[float] = field(default_factory=deque)


class FakeBinance:
    """The fake exchange; start with ``async with`` (or :meth:`start`/:meth:`stop`)."""

    def __init__(
        self,
        *,
        seed: int = 1,
        speed: float = 1.0,
        start_ms: int | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        in_progress_updates: bool = True,
        max_streams_per_connection: int = 1024,
        max_messages_per_second: int = 5,
        ping_interval: float | None = None,
        pong_timeout: float = 5.0,
        listed: tuple[str, ...] = LISTED,
    ) -> None:
        self.seed = seed
        self.listed = listed
        now = int(time.time() * 1000) if start_ms is None else start_ms
        self.clock = FakeClock(now // 1000 * 1000, speed)
        self.host = host
        self.port = port
        self.in_progress_updates = in_progress_updates
        self.max_streams_per_connection = max_streams_per_connection
        self.max_messages_per_second = max_messages_per_second
        self.ping_interval = ping_interval
        self.pong_timeout = pong_timeout
        self.stats = FakeStats()
        self._clients: set[_Client] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Condition()
        self._throttle = (0, 1, 429)  # requests left to refuse, Retry-After seconds, status
        self._refuse_until_ms = 0
        self._server: Server | None = None

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def now_ms(self) -> int:
        return self.clock.now_ms()

    def kline(self, symbol: str, open_time: int) -> Kline:
        """The closed kline this exchange publishes for ``symbol`` at ``open_time``."""
        return kline_at(self.seed, symbol, open_time)

    async def start(self) -> None:
        self._server = await serve(
            self._serve_client,
            self.host,
            self.port,
            process_request=self._process_request,
            ping_interval=None,  # the fake pings on its own schedule, checking payloads
            compression=None,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # --- Faults on demand -------------------------------------------------------------------

    def drop_connections(self, outage_ms: int = 0) -> int:
        """Cut every WebSocket connection without a close frame, like a network failure.

        For ``outage_ms`` of exchange time afterwards, new connections are refused (HTTP 503).
        """
        self._refuse_until_ms = self.now_ms() + outage_ms
        dropped = len(self._clients)
        for client in list(self._clients):
            client.ws.transport.abort()
        self.stats.connections_dropped += dropped
        return dropped

    async def inject(self, raw: str) -> int:
        """Send ``raw`` as a text frame on every connection, e.g. a malformed message."""
        clients = list(self._clients)
        for client in clients:
            with contextlib.suppress(ConnectionClosed):
                await client.ws.send(raw)
        return len(clients)

    async def send_server_shutdown(self, close_after_ms: int = 5_000) -> int:
        """Send ``serverShutdown`` to every connection and close each ``close_after_ms`` later."""
        notice = msgspec.json.encode(
            {"stream": "!serverShutdown", "data": {"e": "serverShutdown", "E": self.now_ms()}}
        ).decode()
        clients = list(self._clients)
        for client in clients:
            with contextlib.suppress(ConnectionClosed):
                await client.ws.send(notice)
            self._spawn(self._close_at(client, self.now_ms() + close_after_ms))
        self.stats.server_shutdowns_sent += len(clients)
        await self._notify()
        return len(clients)

    def throttle(self, requests: int, retry_after: int = 1, status: int = 429) -> None:
        """Answer the next ``requests`` klines requests with ``status`` and ``Retry-After``."""
        self._throttle = (requests, retry_after, status)

    async def wait_until(self, condition: Callable[[], bool], within: float = 10.0) -> None:
        """Return once ``condition()`` holds (checked on every change the fake sees)."""
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(condition)

    # --- WebSocket --------------------------------------------------------------------------

    async def _serve_client(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        client = _Client(ws, set(_requested_streams(ws.request.path)))
        self._clients.add(client)
        self.stats.connections_opened += 1
        self.stats.connections_open = len(self._clients)
        self.stats.most_connections_open = max(self.stats.most_connections_open, len(self._clients))
        self.stats.streams_per_connection.append(len(client.streams))
        await self._notify()
        workers = [asyncio.create_task(self._publish(client))]
        if self.ping_interval is not None:
            workers.append(asyncio.create_task(self._ping(client)))
        try:
            async for message in ws:
                await self._answer(client, message)
        except ConnectionClosed:
            pass
        finally:
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            self._clients.discard(client)
            self.stats.connections_open = len(self._clients)
            await self._notify()

    async def _publish(self, client: _Client) -> None:
        """Each second: an in-progress update halfway, then the closed kline just after the end."""
        second = self.now_ms() // 1000 * 1000
        while True:
            if self.in_progress_updates:
                await self.clock.sleep_until(second + 500)
                await self._send_klines(client, second, closed=False)
            await self.clock.sleep_until(second + 1000)
            await self._send_klines(client, second, closed=True)
            second += 1000
            await self._notify()

    async def _send_klines(self, client: _Client, open_time: int, closed: bool) -> None:
        for stream in sorted(client.streams):
            symbol = stream.split("@", 1)[0].upper()
            kline = self.kline(symbol, open_time)
            if not closed:
                kline = in_progress(kline, open_time + 500)
            await client.ws.send(combined_stream_message(kline))

    async def _answer(self, client: _Client, message: str | bytes) -> None:
        now = time.monotonic()
        client.received.append(now)
        while client.received and client.received[0] <= now - 1.0:
            client.received.popleft()
        if len(client.received) > self.max_messages_per_second:
            self.stats.rate_limit_violations += 1
            await self._notify()
            await client.ws.close(1008, "Too many requests")
            return
        try:
            request = json.loads(message)
            method, request_id = request["method"], request.get("id")
        except (ValueError, KeyError, TypeError):
            await client.ws.send(json.dumps({"code": 3, "msg": "Invalid JSON", "id": None}))
            return
        params = request.get("params") or []
        if method == "SUBSCRIBE":
            self.stats.subscribe_requests += 1
            wanted = client.streams | set(params)
            if len(wanted) > self.max_streams_per_connection or not all(
                _STREAM.fullmatch(p) for p in params
            ):
                reply: object = {"code": 2, "msg": "Invalid request: streams", "id": request_id}
            else:
                client.streams = wanted
                reply = {"result": None, "id": request_id}
        elif method == "UNSUBSCRIBE":
            client.streams -= set(params)
            reply = {"result": None, "id": request_id}
        elif method == "LIST_SUBSCRIPTIONS":
            reply = {"result": sorted(client.streams), "id": request_id}
        else:
            reply = {"code": 2, "msg": f"Invalid request: unknown method {method}", "id": None}
        await client.ws.send(json.dumps(reply))
        await self._notify()

    async def _ping(self, client: _Client) -> None:
        assert self.ping_interval is not None
        while True:
            await asyncio.sleep(self.ping_interval)
            payload = os.urandom(8)
            pong = await client.ws.ping(payload)  # resolves only on a pong echoing ``payload``
            self.stats.pings_sent += 1
            try:
                await asyncio.wait_for(pong, self.pong_timeout)
            except TimeoutError:
                self.stats.pongs_missing += 1
            else:
                self.stats.pongs_matched += 1
            await self._notify()

    async def _close_at(self, client: _Client, at_ms: int) -> None:
        await self.clock.sleep_until(at_ms)
        await client.ws.close(1001, "server shutdown")

    # --- REST and handshake checks ----------------------------------------------------------

    async def _process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if url.path == "/stream":
            if self.now_ms() < self._refuse_until_ms:
                return self._rejected(503, {"code": -1001, "msg": "Service unavailable."})
            streams = _requested_streams(request.path)
            if not all(_STREAM.fullmatch(s) for s in streams):
                return self._rejected(400, {"code": -1100, "msg": "Invalid stream name."})
            if len(streams) > self.max_streams_per_connection:
                return self._rejected(400, {"code": -1100, "msg": "Too many streams."})
            return None
        self.stats.rest_requests[url.path] = self.stats.rest_requests.get(url.path, 0) + 1
        await self._notify()
        handler = self._routes().get(url.path)
        if handler is None:
            return _json_response(404, {"code": -1, "msg": f"no route {url.path}"})
        return await handler(query)

    def _routes(self) -> Mapping[str, Callable[[dict[str, str]], Awaitable[Response]]]:
        return {
            "/api/v3/ping": self._rest_ping,
            "/api/v3/time": self._rest_time,
            "/api/v3/klines": self._rest_klines,
            "/api/v3/exchangeInfo": self._rest_exchange_info,
            "/fake/drop": self._control_drop,
            "/fake/server-shutdown": self._control_shutdown,
            "/fake/throttle": self._control_throttle,
            "/fake/stats": self._control_stats,
        }

    def _rejected(self, status: int, body: object) -> Response:
        self.stats.rejected_handshakes += 1
        return _json_response(status, body)

    async def _rest_ping(self, query: dict[str, str]) -> Response:
        return _json_response(200, {})

    async def _rest_time(self, query: dict[str, str]) -> Response:
        return _json_response(200, {"serverTime": self.now_ms()})

    async def _rest_klines(self, query: dict[str, str]) -> Response:
        refuse, retry_after, status = self._throttle
        if refuse > 0:
            self._throttle = (refuse - 1, retry_after, status)
            self.stats.throttled_requests += 1
            body = {"code": -1003, "msg": "Too many requests; please use the websocket."}
            return _json_response(status, body, {"Retry-After": str(retry_after)})
        try:
            rows = self._kline_rows(query)
        except ValueError as exc:
            return _json_response(400, {"code": -1100, "msg": str(exc)})
        return _json_response(200, rows)

    async def _rest_exchange_info(self, query: dict[str, str]) -> Response:
        try:
            if "symbol" in query:
                symbols = [query["symbol"]]
            elif "symbols" in query:
                symbols = json.loads(query["symbols"])
                if not isinstance(symbols, list) or not all(isinstance(x, str) for x in symbols):
                    raise ValueError
            else:
                symbols = list(self.listed)
        except ValueError:
            return _json_response(
                400, {"code": -1100, "msg": "Illegal characters found in a parameter."}
            )
        if not all(s.isalnum() and s == s.upper() for s in symbols):
            return _json_response(400, {"code": -1121, "msg": "Invalid symbol."})
        return _json_response(200, exchange_info(self.seed, symbols, self.now_ms()))

    def _kline_rows(self, query: dict[str, str]) -> list[list[object]]:
        symbol = query.get("symbol", "")
        if not symbol.isalnum() or symbol != symbol.upper():
            raise ValueError("Illegal characters found in parameter 'symbol'.")
        if query.get("interval") != "1s":
            raise ValueError("Invalid interval.")
        limit = int(query.get("limit", _DEFAULT_LIMIT))
        if not 1 <= limit <= _MAX_LIMIT:
            raise ValueError("Illegal limit.")
        now = self.now_ms()
        last = min(int(query.get("endTime", now)), now) // 1000 * 1000
        if "startTime" in query:
            first = -(-int(query["startTime"]) // 1000) * 1000
            last = min(last, first + (limit - 1) * 1000)
        else:
            first = last - (limit - 1) * 1000
        rows = []
        for open_time in range(first, last + 1, 1000):
            kline = self.kline(symbol, open_time)
            if open_time + 1000 > now:  # the current second: as it stands so far
                kline = in_progress(kline, now)
            rows.append(rest_row(kline))
        return rows

    async def _control_drop(self, query: dict[str, str]) -> Response:
        dropped = self.drop_connections(int(query.get("outage_ms", 0)))
        return _json_response(200, {"dropped": dropped})

    async def _control_shutdown(self, query: dict[str, str]) -> Response:
        sent = await self.send_server_shutdown(int(query.get("close_after_ms", 5000)))
        return _json_response(200, {"notified": sent})

    async def _control_throttle(self, query: dict[str, str]) -> Response:
        requests, retry_after = int(query.get("requests", 1)), int(query.get("retry_after", 1))
        self.throttle(requests, retry_after, int(query.get("status", 429)))
        return _json_response(200, {"requests": requests, "retry_after": retry_after})

    async def _control_stats(self, query: dict[str, str]) -> Response:
        return _json_response(200, {**asdict(self.stats), "now_ms": self.now_ms()})

    # --- Plumbing ---------------------------------------------------------------------------

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()


def combined_stream_message(kline: Kline) -> str:
    """``kline`` as Binance's combined stream sends it (``btcusdt@kline_1s``)."""
    body = {
        "e": "kline",
        "E": kline.event_time,
        "s": kline.symbol,
        "k": {
            "t": kline.open_time,
            "T": kline.close_time,
            "s": kline.symbol,
            "i": "1s",
            "f": _first_trade_id(kline),
            "L": _first_trade_id(kline) + kline.trades - 1 if kline.trades else -1,
            "o": decimal_text(kline.open),
            "c": decimal_text(kline.close),
            "h": decimal_text(kline.high),
            "l": decimal_text(kline.low),
            "v": decimal_text(kline.volume),
            "n": kline.trades,
            "x": kline.closed,
            "q": decimal_text(kline.quote_volume),
            "V": decimal_text(kline.taker_buy_base_volume),
            "Q": decimal_text(kline.taker_buy_quote_volume),
            "B": "0",
        },
    }
    return json.dumps({"stream": f"{kline.symbol.lower()}@kline_1s", "data": body})


def rest_row(kline: Kline) -> list[object]:
    """``kline`` as a row of Binance's ``/api/v3/klines`` answer."""
    return [
        kline.open_time,
        decimal_text(kline.open),
        decimal_text(kline.high),
        decimal_text(kline.low),
        decimal_text(kline.close),
        decimal_text(kline.volume),
        kline.close_time,
        decimal_text(kline.quote_volume),
        kline.trades,
        decimal_text(kline.taker_buy_base_volume),
        decimal_text(kline.taker_buy_quote_volume),
        "0",
    ]


def exchange_info(seed: int, symbols: list[str], server_time: int) -> dict[str, object]:
    """Binance's ``/api/v3/exchangeInfo`` answer for ``symbols``, field for field."""
    return {
        "timezone": "UTC",
        "serverTime": server_time,
        "rateLimits": [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": 6000,
            },
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
            {
                "rateLimitType": "RAW_REQUESTS",
                "interval": "MINUTE",
                "intervalNum": 5,
                "limit": 61000,
            },
        ],
        "exchangeFilters": [],
        "symbols": [_symbol_entry(seed, symbol) for symbol in symbols],
    }


def _symbol_entry(seed: int, symbol: str) -> dict[str, object]:
    base, quote = (
        (symbol[:-4], symbol[-4:]) if symbol.endswith("USDT") else (symbol[:-3], symbol[-3:])
    )
    tick = decimal_text(tick_size(seed, symbol))
    lot = decimal_text(LOT_SIZE)
    return {
        "symbol": symbol,
        "status": "TRADING",
        "baseAsset": base,
        "baseAssetPrecision": 8,
        "quoteAsset": quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": [
            "LIMIT",
            "LIMIT_MAKER",
            "MARKET",
            "STOP_LOSS",
            "STOP_LOSS_LIMIT",
            "TAKE_PROFIT",
            "TAKE_PROFIT_LIMIT",
        ],
        "icebergAllowed": True,
        "ocoAllowed": True,
        "otoAllowed": True,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True,
        "cancelReplaceAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": True,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": tick,
                "maxPrice": "1000000.00000000",
                "tickSize": tick,
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": lot,
                "maxQty": "9000.00000000",
                "stepSize": lot,
            },
            {"filterType": "ICEBERG_PARTS", "limit": 10},
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": "0.00000000",
                "maxQty": "100.00000000",
                "stepSize": "0.00000000",
            },
            {
                "filterType": "TRAILING_DELTA",
                "minTrailingAboveDelta": 10,
                "maxTrailingAboveDelta": 2000,
                "minTrailingBelowDelta": 10,
                "maxTrailingBelowDelta": 2000,
            },
            {
                "filterType": "PERCENT_PRICE_BY_SIDE",
                "bidMultiplierUp": "5",
                "bidMultiplierDown": "0.2",
                "askMultiplierUp": "5",
                "askMultiplierDown": "0.2",
                "avgPriceMins": 5,
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": "5.00000000",
                "applyMinToMarket": True,
                "maxNotional": "9000000.00000000",
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
        ],
        "permissions": [],
        "permissionSets": [["SPOT", "MARGIN"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }


def decimal_text(value: Decimal) -> str:
    """A decimal the way Binance prints it: fixed point, 8 places."""
    return f"{value:.8f}"


def _first_trade_id(kline: Kline) -> int:
    return kline.open_time // 10 if kline.trades else -1


def _requested_streams(path: str) -> list[str]:
    streams = parse_qs(urlsplit(path).query).get("streams", [""])[-1]
    return [s for s in streams.split("/") if s]


def _json_response(
    status: int, body: object, extra_headers: Mapping[str, str] | None = None
) -> Response:
    data = msgspec.json.encode(body)
    headers = Headers(
        [
            ("Date", email.utils.formatdate(usegmt=True)),
            ("Connection", "close"),
            ("Content-Type", "application/json;charset=UTF-8"),
            ("Content-Length", str(len(data))),
        ]
    )
    for name, value in (extra_headers or {}).items():
        headers[name] = value
    return Response(status, http.HTTPStatus(status).phrase, headers, data)


async def _serve_until_signalled(fake: FakeBinance) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with fake:
        print(
            json.dumps({"port": fake.port, "ws_url": fake.ws_url, "rest_url": fake.rest_url}),
            flush=True,
        )
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fakes.binance",
        description="Serve a fake Binance (WebSocket kline streams and REST klines) on one port. "
        "Prints one JSON line with its URLs, then serves until SIGINT/SIGTERM.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    parser.add_argument("--seed", type=int, default=1, help="market seed (same seed, same klines)")
    parser.add_argument("--speed", type=float, default=1.0, help="exchange seconds per real second")
    parser.add_argument("--start-ms", type=int, help="exchange time at start (default: now)")
    parser.add_argument("--ping-interval", type=float, help="seconds between pings (default: none)")
    parser.add_argument("--max-streams", type=int, default=1024, help="streams per connection")
    parser.add_argument(
        "--listed",
        default=",".join(LISTED),
        help="symbols exchangeInfo lists when asked for all (comma-separated)",
    )
    parser.add_argument(
        "--no-in-progress", action="store_true", help="send only closed klines, once a second"
    )
    args = parser.parse_args(argv)
    fake = FakeBinance(
        seed=args.seed,
        speed=args.speed,
        start_ms=args.start_ms,
        host=args.host,
        port=args.port,
        in_progress_updates=not args.no_in_progress,
        max_streams_per_connection=args.max_streams,
        ping_interval=args.ping_interval,
        listed=tuple(s for s in args.listed.split(",") if s),
    )
    asyncio.run(_serve_until_signalled(fake))


if __name__ == "__main__":
    main()
