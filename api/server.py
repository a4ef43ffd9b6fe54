"""The app under uvicorn as shipped: its WebSocket protocol offers whole frames written straight
to the connection (api/wire.py), with the ping, size and compression settings of ``ApiConfig``."""

from __future__ import annotations

from typing import Any

import uvicorn
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request
from websockets.protocol import State

from cryptochart.api.config import ApiConfig
from cryptochart.api.wire import EXTENSION, Written


class FrameWritingProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol, plus ``write`` offered to the app in the scope."""

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        if not self.close_sent:  # the handshake is acceptable: the scope is the app's
            self.scope["extensions"][EXTENSION] = {"write": self.write_frame}

    def write_frame(self, frame: bytes) -> Written:
        """Write one whole frame (api/wire.py's ``text_frame``) unless the connection cannot
        take it: closing or gone, or its transport over the high-water mark."""
        if self.close_sent or self.disconnected or self.transport.is_closing():
            return Written.CLOSED
        if not self.handshake_complete or not self.writable.is_set():
            return Written.BUSY
        if self.conn.state is not State.OPEN:  # the client's close is in
            return Written.CLOSED
        self.transport.write(frame)
        return Written.SENT


def uvicorn_config(app: Any, config: ApiConfig, **options: Any) -> uvicorn.Config:
    """``uvicorn.Config`` of the API: ``options`` are uvicorn's own (host, port, log_level …)."""
    return uvicorn.Config(
        app,
        ws=FrameWritingProtocol,
        ws_ping_interval=config.ws_ping_interval,
        ws_ping_timeout=config.ws_ping_timeout,
        ws_max_size=max(65_536, 16 * config.ws_max_frame_bytes),
        # Frames are ~250 bytes: compressing them costs more CPU and memory than it saves.
        ws_per_message_deflate=False,
        **options,
    )
