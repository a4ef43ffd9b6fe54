"""Fan-out to WebSocket clients: each published frame goes straight into the outbox of every
socket following its channel, and one writer task per socket sends what its outbox holds.

An outbox is bounded: when a client reads too slowly, its oldest frames are dropped (and
counted), so a stalled client holds back only itself and costs bounded memory.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from cryptochart.api.metrics import FRAMES_DROPPED

log = logging.getLogger(__name__)


class Outbox:
    """One socket's frames waiting to be sent, in order; at most ``limit`` of them."""

    def __init__(self, send: Callable[[bytes], Awaitable[None]], limit: int) -> None:
        self.limit = limit
        self._send = send
        self._frames: deque[bytes] = deque()
        self._wake: asyncio.Future[None] | None = None
        self.closed = False  # a send failed: the client has gone

    def __len__(self) -> int:
        return len(self._frames)

    def put(self, data: bytes) -> None:
        if self.closed:
            return
        self._frames.append(data)
        while len(self._frames) > self.limit:  # more than one when the limit has just shrunk
            self._frames.popleft()
            FRAMES_DROPPED.inc()
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    async def run(self) -> None:
        """Send frames as they come, until cancelled or a send fails."""
        loop = asyncio.get_running_loop()
        while True:
            while self._frames:
                try:
                    await self._send(self._frames.popleft())
                except Exception:  # the client went away; its receive loop cleans up
                    log.debug("send to a closed socket", exc_info=True)
                    self.closed = True
                    self._frames.clear()
                    return
            self._wake = loop.create_future()
            try:
                await self._wake
            finally:
                self._wake = None


class Fanout:
    """Channel name → the outboxes of the sockets following it."""

    def __init__(self) -> None:
        self._outboxes: dict[str, set[Outbox]] = {}

    def subscribe(self, channel: str, outbox: Outbox) -> None:
        self._outboxes.setdefault(channel, set()).add(outbox)

    def unsubscribe(self, channel: str, outbox: Outbox) -> None:
        outboxes = self._outboxes.get(channel)
        if outboxes is None:
            return
        outboxes.discard(outbox)
        if not outboxes:
            del self._outboxes[channel]

    def publish(self, data: bytes, channel: str) -> None:
        for outbox in self._outboxes.get(channel, ()):
            outbox.put(data)
