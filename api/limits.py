"""Bounds on what one client can make the API do: HTTP requests per address and minute, sockets
per address, messages per socket and second, REST requests in progress at once. Each is a setting
(``ApiConfig``) and each refusal says which limit it met."""

from __future__ import annotations

import math
import re
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import msgspec
from litestar.enums import ScopeType
from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Message,
    Receive,
    Scope,
    Send,
)

RETRY_AFTER_SECONDS = 1


class SocketsPerAddress:
    """Open WebSockets counted per client address; ``admit`` refuses past ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: Counter[str] = Counter()

    def admit(self, address: str) -> bool:
        if self._open[address] >= self.limit:
            return False
        self._open[address] += 1
        return True

    def release(self, address: str) -> None:
        self._open[address] -= 1
        if self._open[address] <= 0:
            del self._open[address]


class MessageRate:
    """At most ``limit`` messages in any second; ``allow`` records one and says if it fits."""

    def __init__(self, limit: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        self._recent: deque[float] = deque()

    def allow(self) -> bool:
        now = self._clock()
        while self._recent and self._recent[0] <= now - 1.0:
            self._recent.popleft()
        if len(self._recent) >= self.limit:
            return False
        self._recent.append(now)
        return True


@dataclass(slots=True)
class _Window:
    reset: float  # when the window closes (the clock's seconds)
    used: int  # requests counted in it, at most one past the limit


class RequestRate:
    """At most ``limit`` HTTP requests per client address in a window of ``window`` seconds
    opened by the address's first request. One count per address, so a request costs the same
    whatever the limit (no list of timestamps); closed windows are swept once per window. One
    instance serves every route (Litestar builds a middleware per route)."""

    def __init__(
        self, limit: int, window: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._windows: dict[str, _Window] = {}
        self._sweep_at = clock() + window
        self._policy = f"{limit}; w={window:.0f}".encode()

    def admit(self, address: str) -> tuple[bool, list[tuple[bytes, bytes]]]:
        """Count a request of ``address``: whether it is within the limit, and the headers
        that say where the address stands (the IETF draft's RateLimit-*, Retry-After when not)."""
        now = self._clock()
        if now >= self._sweep_at:
            self._windows = {a: w for a, w in self._windows.items() if w.reset > now}
            self._sweep_at = now + self.window
        window = self._windows.get(address)
        if window is None or window.reset <= now:
            window = self._windows[address] = _Window(now + self.window, 0)
        window.used = min(window.used + 1, self.limit + 1)
        reset = str(max(1, math.ceil(window.reset - now))).encode()
        headers = [
            (b"ratelimit-policy", self._policy),
            (b"ratelimit-limit", str(self.limit).encode()),
            (b"ratelimit-remaining", str(max(0, self.limit - window.used)).encode()),
            (b"ratelimit-reset", reset),
        ]
        if window.used > self.limit:
            return False, [*headers, (b"retry-after", reset)]
        return True, headers


class RateLimited:
    """ASGI middleware: HTTP requests over ``rate``'s limit get 429 with Retry-After; every
    answer carries the RateLimit-* headers. Paths matching one of ``exclude`` (regular
    expressions) are not counted."""

    def __init__(self, app: ASGIApp, rate: RequestRate, exclude: Sequence[str] = ()) -> None:
        self.app = app
        self.rate = rate
        self._excluded = re.compile("|".join(exclude)).search if exclude else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or (
            self._excluded is not None and self._excluded(scope["path"])
        ):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        allowed, headers = self.rate.admit("127.0.0.1" if client is None else client[0])
        if not allowed:
            rate = self.rate
            detail = (
                f"Too Many Requests: at most {rate.limit} requests per {rate.window:.0f} s from "
                f"one address; retry in {dict(headers)[b'retry-after'].decode()} s"
            )
            await _refuse(send, 429, detail, headers)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *headers]
            await send(message)

        await self.app(scope, receive, with_headers)


@dataclass(slots=True)
class InProgress:
    """REST requests in progress across the API, and how many may be; one instance serves every
    route."""

    limit: int
    count: int = 0


class RequestsInProgress:
    """ASGI middleware: at most ``gate.limit`` requests under ``prefix`` in progress at once; the
    next one gets 503 with Retry-After at once rather than queueing for the database."""

    def __init__(self, app: ASGIApp, gate: InProgress, prefix: str = "/api/") -> None:
        self.app = app
        self.gate = gate
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        gate = self.gate
        if gate.count >= gate.limit:
            await _busy(send, gate.limit)
            return
        gate.count += 1
        try:
            await self.app(scope, receive, send)
        finally:
            gate.count -= 1


async def _busy(send: Send, limit: int) -> None:
    detail = f"the API is answering {limit} requests already; retry shortly"
    await _refuse(send, 503, detail, [(b"retry-after", str(RETRY_AFTER_SECONDS).encode())])


async def _refuse(send: Send, status: int, detail: str, headers: list[tuple[bytes, bytes]]) -> None:
    """Answer ``status`` with Litestar's error body (``status_code``, ``detail``)."""
    body = msgspec.json.encode({"status_code": status, "detail": detail})
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *headers,
        ],
    }
    await send(start)
    end: HTTPResponseBodyEvent = {"type": "http.response.body", "body": body, "more_body": False}
    await send(end)
