"""Fan-out to WebSocket clients: each published frame goes to every socket following its channel,
written straight to the connection where the server offers it (api/wire.py), else into the
socket's outbox, whose one writer task sends what it holds.

A frame waits in the outbox only while the connection cannot take it (its transport is over the
high-water mark) or frames queued before it wait; the outbox is bounded: when a client reads too
slowly, its oldest frames are dropped (and counted), so a stalled client holds back only itself
and costs bounded memory.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from cryptochart.api.metrics import FRAMES_DROPPED, FRAMES_SENT
from cryptochart.api.wire import Write, Written, text_frame

log = logging.getLogger(__name__)


class Outbox:
    """One socket's frames waiting to be sent, in order; at most ``limit`` of them."""

    def __init__(
        self, send: Callable[[bytes], Awaitable[None]], limit: int, write: Write | None = None
    ) -> None:
        self.limit = limit
        self._send = send
        self._write = write
        self._frames: deque[bytes] = deque()
        self._wake: asyncio.Future[None] | None = None
        self._sending = False  # the writer task holds a frame it has not finished sending
        self.closed = False  # a send failed: the client has gone

    def __len__(self) -> int:
        return len(self._frames)

    def put(self, data: bytes, framed: bytes | None = None) -> bool:
        """Send ``data`` (``framed``: the same as a whole frame, if made already); True when it
        was written straight away, False when it waits for the writer task (or is lost)."""
        if self.closed:
            return False
        if self._write is not None and not self._frames and not self._sending:
            written = self._write(text_frame(data) if framed is None else framed)
            if written is Written.SENT:
                return True
            if written is Written.CLOSED:  # the client went away; its receive loop cleans up
                self.closed = True
                return False
        self._frames.append(data)
        while len(self._frames) > self.limit:  # more than one when the limit has just shrunk
            self._frames.popleft()
            FRAMES_DROPPED.inc()
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)
        return False

    async def run(self) -> None:
        """Send frames as they come, until cancelled or a send fails."""
        loop = asyncio.get_running_loop()
        while True:
            while self._frames:
                self._sending = True
                try:
                    await self._send(self._frames.popleft())
                except Exception:  # the client went away; its receive loop cleans up
                    log.debug("send to a closed socket", exc_info=True)
                    self.closed = True
                    self._frames.clear()
                    return
                finally:
                    self._sending = False
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
        outboxes = self._outboxes.get(channel)
        if not outboxes:
            return
        framed = text_frame(data)  # once for every connection written straight to
        sent = 0
        for outbox in outboxes:
            sent += outbox.put(data, framed)
        if sent:
            FRAMES_SENT.inc(sent)
