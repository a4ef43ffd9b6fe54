"""A chart's live view kept in Python the way the page keeps it, over several API replicas.

The page (frontend/src/socket.ts, history.ts, live.ts) dials one socket and subscribes; it loads
the newest page of candles by REST while holding live frames back, then applies the page and the
held frames in order. When the socket drops it dials again (0.5 s first, jittered) and, once
open, fetches the candles from its newest one on, again holding live frames meanwhile. A live
candle more than one interval after the newest asks REST for the ones between, 1.5 s later (the
database trails the live stream), at most once per 5 s. Here a dropped socket dials the next
replica of a list, as a load balancer in front of the replicas would send it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import threading
import time
from collections.abc import Sequence
from decimal import Decimal
from types import TracebackType
from typing import Any, NamedTuple, Self

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

# open_ms, close_ms, open, high, low, close, volume, quote_volume, trades, taker base, taker quote:
# as tests.faults.stored reads a row (without the aggregates' ``seconds``).
Candle = tuple[
    int, int, Decimal, Decimal, Decimal, Decimal, Decimal, Decimal, int, Decimal, Decimal
]

INTERVAL_MS = {"1s": 1_000, "1m": 60_000, "5m": 300_000, "15m": 900_000, "1h": 3_600_000}
BACKOFF_SECONDS = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0)  # socket.ts BACKOFF_MS
PAGE = 1_000  # api.ts KLINES_MAX_LIMIT
HOLE_FILL_DELAY = 1.5  # history.ts HOLE_FILL_DELAY_MS
HOLE_FILL_SPACING = 5.0  # history.ts HOLE_FILL_SPACING_MS
HOLE_FILL_TRIES = 4  # history.ts HOLE_FILL_TRIES


def candle_of(row: Sequence[Any]) -> Candle:
    """A REST row or a live frame's ``k`` as exact values, in the stored row's order."""
    open_ms, o, h, lo, c, v, close_ms, qv, n, tb, tq = row[:11]
    d = Decimal
    return (int(open_ms), int(close_ms), d(o), d(h), d(lo), d(c), d(v), d(qv), int(n), d(tb), d(tq))


class LiveStart(NamedTuple):
    """A socket's first live (not snapshot) frame: which replica sent it, and when it came and
    the socket opened (monotonic)."""

    replica: int
    at: float
    opened: float


class FailoverClient:
    """One page following ``symbol`` at ``interval``, starting on ``urls[0]``."""

    def __init__(self, symbol: str, interval: str, urls: Sequence[str]) -> None:
        self.symbol = symbol
        self.interval = interval
        self.step = INTERVAL_MS[interval]
        self.urls = list(urls)
        self.replica = 0
        self.live_starts: list[LiveStart] = []
        self.errors: list[str] = []  # REST failures, for a failing test's message
        # Candles REST added after each reconnect (newer than the newest shown), and per hole.
        self.gap_filled: list[int] = []
        self.hole_filled: list[int] = []
        # (after, before) of holes seen while a fill was due or on its way: fetched with it or next.
        self.holes_waited: list[tuple[int, int]] = []
        self._bars: dict[int, Candle] = {}
        self._last: int | None = None
        self._lock = threading.Lock()  # the test's thread reads the bars while this one writes
        self._holding = True
        self._pending: list[Candle] = []
        self._attempt = 0
        self._hole_span: tuple[int, int] | None = None  # holes waiting for a fill, as one span
        self._hole_timer: asyncio.TimerHandle | None = None
        self._hole_filling = False
        self._hole_tries = 0
        self._last_hole_fill = -HOLE_FILL_SPACING
        self._generation = 0  # bumped per socket: a fill of a closed one is dropped
        self._tasks: set[asyncio.Task[None]] = set()
        self._http: httpx.AsyncClient | None = None

    # --- what the test reads ---------------------------------------------------------------

    def bars(self) -> dict[int, Candle]:
        with self._lock:
            return dict(self._bars)

    def holes(self) -> list[int]:
        """Open times missing between the first and the last bar."""
        with self._lock:
            if not self._bars:
                return []
            first, last = min(self._bars), max(self._bars)
            return [t for t in range(first, last, self.step) if t not in self._bars]

    def live_on(self, replica: int, since: float) -> LiveStart | None:
        """The first socket to ``replica`` opened after ``since`` with a live frame, or None yet."""
        return next(
            (s for s in self.live_starts if s.replica == replica and s.opened > since), None
        )

    # --- the page's behaviour ----------------------------------------------------------------

    async def run(self, http: httpx.AsyncClient) -> None:
        """Follow until cancelled, moving to the next replica whenever the socket drops."""
        self._http = http
        while True:
            # Refused, or dropped: the page's close handler retries.
            with contextlib.suppress(OSError, TimeoutError, WebSocketException):
                await self._session(http, self.urls[self.replica])
            self._generation += 1
            self.replica = (self.replica + 1) % len(self.urls)
            base = BACKOFF_SECONDS[min(self._attempt, len(BACKOFF_SECONDS) - 1)]
            self._attempt += 1
            await asyncio.sleep(base * (0.8 + random.random() * 0.4))

    async def _session(self, http: httpx.AsyncClient, url: str) -> None:
        ws_url = url.replace("http://", "ws://") + "/ws"
        async with connect(ws_url, open_timeout=5, max_queue=None) as ws:
            opened = time.monotonic()
            self._attempt = 0
            await self._send_subscribe(ws)
            generation = self._generation
            self._hold()
            fill = asyncio.create_task(self._fill_gap(http, url, generation))
            live_seen = False
            try:
                async for message in ws:
                    frame = json.loads(message)
                    if not self._ours(frame):
                        continue
                    if not live_seen and not frame.get("snapshot", False):
                        live_seen = True
                        self.live_starts.append(LiveStart(self.replica, time.monotonic(), opened))
                    self._apply(candle_of(frame["k"]))
            finally:
                fill.cancel()

    async def _send_subscribe(self, ws: ClientConnection) -> None:
        message = {
            "op": "subscribe",
            "channel": "kline",
            "symbols": [self.symbol],
            "interval": self.interval,
        }
        await ws.send(json.dumps(message))

    def _ours(self, frame: dict[str, Any]) -> bool:
        return bool(
            frame.get("type") == "kline"
            and frame.get("symbol") == self.symbol
            and frame.get("interval") == self.interval
        )

    async def _fetch(
        self, http: httpx.AsyncClient, url: str, **window: int
    ) -> list[list[Any]] | None:
        params: dict[str, str | int] = {"symbol": self.symbol, "interval": self.interval}
        params |= {"limit": PAGE, **window}
        try:
            response = await http.get(f"{url}/api/v1/klines", params=params)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            self.errors.append(f"{url} {params}: {exc!r}")
            return None
        rows: list[list[Any]] = response.json()
        return rows

    async def _fill_gap(self, http: httpx.AsyncClient, url: str, generation: int) -> None:
        """The newest page on a first load; after a reconnect the candles from the newest one
        on (a whole page of them: down too long, load afresh). Then the held frames."""
        last = self._last
        window = {} if last is None else {"startTime": last}
        rows = await self._fetch(http, url, **window)
        if generation != self._generation:
            return
        if last is not None and rows is not None and len(rows) >= PAGE:
            last, rows = None, await self._fetch(http, url)
            if generation != self._generation:
                return
        candles = [candle_of(r) for r in rows or []]
        if last is not None:
            self.gap_filled.append(sum(1 for c in candles if c[0] > last))
        else:
            with self._lock:
                self._bars = {c[0]: c for c in candles}
                self._last = max(self._bars, default=None)
            candles = []
        self._release(candles)

    def _hold(self) -> None:
        self._holding = True
        self._pending = []

    def _release(self, first: list[Candle]) -> None:
        self._holding = False
        pending, self._pending = self._pending, []
        for candle in [*first, *pending]:
            self._apply(candle)

    def _apply(self, candle: Candle) -> None:
        """live.ts apply: update the newest candle or append a newer one; older is dropped."""
        if self._holding:
            self._pending.append(candle)
            return
        previous = self._last
        if previous is not None and candle[0] < previous:
            return
        with self._lock:
            self._bars[candle[0]] = candle
            self._last = candle[0]
        if previous is not None and candle[0] - previous > self.step:
            self._hole(previous, candle[0])

    def _hole(self, after: int, before: int) -> None:
        """history.ts fillHole: the hole joins the span waiting for a fill, fetched 1.5 s after
        the newest hole and 5 s after the last fill at the earliest, or after the fill on its
        way."""
        if self._hole_filling or self._hole_timer is not None:
            self.holes_waited.append((after, before))
        self._keep_hole(after, before)
        if not self._hole_filling:
            self._schedule_fill()

    def _keep_hole(self, after: int, before: int) -> None:
        span = self._hole_span
        self._hole_span = (min(after, span[0]), max(before, span[1])) if span else (after, before)

    def _schedule_fill(self) -> None:
        if self._hole_timer is not None:
            self._hole_timer.cancel()
        spacing = self._last_hole_fill + HOLE_FILL_SPACING - time.monotonic()
        self._hole_timer = asyncio.get_running_loop().call_later(
            max(HOLE_FILL_DELAY, spacing), self._start_fill
        )

    def _start_fill(self) -> None:
        self._hole_timer = None
        task = asyncio.get_running_loop().create_task(self._fill_holes())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fill_holes(self) -> None:
        """history.ts fillHoles: the span and the live bar after it; an answer without that bar
        came before the database caught up, and the span is asked again (4 fills at most)."""
        span, self._hole_span = self._hole_span, None
        if span is None:
            return
        after, before = span
        self._hole_filling = True
        self._last_hole_fill = time.monotonic()
        try:
            assert self._http is not None
            window = {"startTime": after + self.step, "endTime": before + self.step - 1}
            rows = await self._fetch(self._http, self.urls[self.replica], **window)
            candles = [candle_of(r) for r in rows or []]
            with self._lock:
                missing = [c for c in candles if c[0] not in self._bars]
                self._bars.update((c[0], c) for c in missing)
            self.hole_filled.append(len(missing))
            # A failed request leaves the gap, as the page's catch does.
            caught_up = rows is None or any(c[0] == before for c in candles)
            self._hole_tries += 1
            if not caught_up and self._hole_tries < HOLE_FILL_TRIES:
                self._keep_hole(after, before)
            else:
                self._hole_tries = 0
        finally:
            self._hole_filling = False
        if self._hole_span is not None:
            self._schedule_fill()


class Fleet:
    """Failover clients on an event loop in a thread of their own, while the test's thread
    kills and starts replicas."""

    def __init__(self, clients: Sequence[FailoverClient]) -> None:
        self.clients = list(clients)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._started.set()
        async with httpx.AsyncClient(timeout=5) as http:
            tasks = [asyncio.create_task(c.run(http)) for c in self.clients]
            await self._stop.wait()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def __enter__(self) -> Self:
        self._thread.start()
        assert self._started.wait(10), "the clients' event loop did not start"
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
