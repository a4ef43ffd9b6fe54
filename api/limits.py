"""Bounds on what one client can make the API do: sockets per address, messages per socket and
second, REST requests in progress at once. Each is a setting (``ApiConfig``) and each refusal
says which limit it met."""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable

from litestar.enums import ScopeType
from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
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


class RequestsInProgress:
    """ASGI middleware: at most ``limit`` requests under ``prefix`` in progress at once; the next
    one gets 503 with Retry-After at once rather than queueing for the database."""

    def __init__(self, app: ASGIApp, limit: int, prefix: str = "/api/") -> None:
        self.app = app
        self.limit = limit
        self.prefix = prefix
        self.in_progress = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        if self.in_progress >= self.limit:
            await _busy(send, self.limit)
            return
        self.in_progress += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_progress -= 1


async def _busy(send: Send, limit: int) -> None:
    body = (
        b'{"status_code":503,"detail":"the API is answering '
        + str(limit).encode()
        + b' requests already; retry shortly"}'
    )
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": 503,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(RETRY_AFTER_SECONDS).encode()),
        ],
    }
    await send(start)
    end: HTTPResponseBodyEvent = {"type": "http.response.body", "body": body, "more_body": False}
    await send(end)
