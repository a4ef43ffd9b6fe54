"""Whole WebSocket frames written straight to a connection, framed once per published message.

The server (api/server.py) offers each connection's ``write`` to the app as the ASGI extension
``cryptochart.frames``; an app under another server (or a test client) goes without, through
the ASGI ``send`` of every message. A frame is written only whole, so it never interleaves with
the server's own frames (pings, the close), and only while the connection is open.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable, Mapping
from typing import Any

EXTENSION = "cryptochart.frames"

_TEXT_FIN = 0x81  # FIN, opcode 1 (text); a server's frames are not masked


class Written(enum.Enum):
    SENT = "sent"  # handed to the connection's transport
    BUSY = "busy"  # the transport holds more than it should: wait for it to drain
    CLOSED = "closed"  # closing or gone: nothing more can be written


Write = Callable[[bytes], Written]


def text_frame(payload: bytes) -> bytes:
    """``payload`` (UTF-8 text) as one final, unmasked text frame (RFC 6455, 5.2)."""
    size = len(payload)
    if size < 126:
        head = bytes((_TEXT_FIN, size))
    elif size < 1 << 16:
        head = struct.pack("!BBH", _TEXT_FIN, 126, size)
    else:
        head = struct.pack("!BBQ", _TEXT_FIN, 127, size)
    return head + payload


def writer_of(scope: Mapping[str, Any]) -> Write | None:
    """The connection's frame writer, if its server offers one."""
    offered = (scope.get("extensions") or {}).get(EXTENSION)
    return offered.get("write") if isinstance(offered, dict) else None
