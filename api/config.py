"""The API's own settings: ``CRYPTOCHART_API_<FIELD>`` variables (see ``.env.example``).

Each constant is the default of the variable named in its comment; ``ApiConfig.from_env()``
reads them, and tests pass other values directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptochart.core.settings import ROOT, load_env

# CRYPTOCHART_API_CORS_ORIGINS: origins allowed by CORS ("*": any; the data is public, no cookies).
API_CORS_ORIGINS: tuple[str, ...] = ("*",)
# CRYPTOCHART_API_WS_ORIGINS: Origin headers a WebSocket may come from ("*": any).
API_WS_ORIGINS: tuple[str, ...] = ("*",)
# CRYPTOCHART_API_RATE_LIMIT_PER_MINUTE: HTTP requests per client address and minute.
API_RATE_LIMIT_PER_MINUTE = 1200
# CRYPTOCHART_API_POOL_MIN_SIZE / _MAX_SIZE: database connections of the read-only pool.
API_POOL_MIN_SIZE = 1
API_POOL_MAX_SIZE = 10
# CRYPTOCHART_API_QUERY_TIMEOUT: seconds one REST request may wait for the database.
API_QUERY_TIMEOUT = 5.0
# CRYPTOCHART_API_WS_MAX_SUBSCRIPTIONS: channels (symbol x interval, or ticker) per WebSocket.
API_WS_MAX_SUBSCRIPTIONS = 64
# CRYPTOCHART_API_WS_MAX_FRAME_BYTES: the largest client frame; bigger ones close the socket.
API_WS_MAX_FRAME_BYTES = 4096
# CRYPTOCHART_API_WS_BACKLOG: frames a slow client may have queued per channel it follows; older
# ones drop.
API_WS_BACKLOG = 256
# CRYPTOCHART_API_WS_PING_INTERVAL / _TIMEOUT: server pings, and how long a pong may take.
API_WS_PING_INTERVAL = 20.0
API_WS_PING_TIMEOUT = 20.0
# CRYPTOCHART_API_WS_MESSAGES_PER_SECOND: client frames per WebSocket and second; past it, 1008.
API_WS_MESSAGES_PER_SECOND = 20
# CRYPTOCHART_API_WS_PER_ADDRESS: open WebSockets per client address; past it, 1013.
API_WS_PER_ADDRESS = 32
# CRYPTOCHART_API_MAX_REQUESTS_IN_PROGRESS: REST requests answered at once; past it, 503.
API_MAX_REQUESTS_IN_PROGRESS = 64
# CRYPTOCHART_API_UNKNOWN_SYMBOL_TTL: seconds a symbol found in no store is answered unknown
# without asking the database again (one arriving on Kafka is known at once).
API_UNKNOWN_SYMBOL_TTL = 10.0
# CRYPTOCHART_API_GAPS_METRIC_SECONDS: how often the missing-seconds gauge is recomputed.
API_GAPS_METRIC_SECONDS = 30.0
# CRYPTOCHART_API_HISTORY_CACHE_BYTES: memory for final history pages, encoded (1: none kept).
API_HISTORY_CACHE_BYTES = 64 * 1024 * 1024
# CRYPTOCHART_API_FRONTEND_DIR: the built frontend served at "/".
API_FRONTEND_DIR: Path = ROOT / "frontend" / "dist"


@dataclass(frozen=True, slots=True)
class ApiConfig:
    cors_origins: tuple[str, ...] = API_CORS_ORIGINS
    ws_origins: tuple[str, ...] = API_WS_ORIGINS
    rate_limit_per_minute: int = API_RATE_LIMIT_PER_MINUTE
    pool_min_size: int = API_POOL_MIN_SIZE
    pool_max_size: int = API_POOL_MAX_SIZE
    query_timeout: float = API_QUERY_TIMEOUT
    ws_max_subscriptions: int = API_WS_MAX_SUBSCRIPTIONS
    ws_max_frame_bytes: int = API_WS_MAX_FRAME_BYTES
    ws_backlog: int = API_WS_BACKLOG
    ws_ping_interval: float = API_WS_PING_INTERVAL
    ws_ping_timeout: float = API_WS_PING_TIMEOUT
    ws_messages_per_second: int = API_WS_MESSAGES_PER_SECOND
    ws_per_address: int = API_WS_PER_ADDRESS
    max_requests_in_progress: int = API_MAX_REQUESTS_IN_PROGRESS
    unknown_symbol_ttl: float = API_UNKNOWN_SYMBOL_TTL
    gaps_metric_seconds: float = API_GAPS_METRIC_SECONDS
    history_cache_bytes: int = API_HISTORY_CACHE_BYTES
    frontend_dir: Path = API_FRONTEND_DIR

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ApiConfig:
        return load_env(cls, "CRYPTOCHART_API_", environ)
