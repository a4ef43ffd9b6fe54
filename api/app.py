"""The API application: REST history, the live WebSocket, health and metrics, the frontend."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.datastructures import MutableScopeHeaders, State
from litestar.di import Provide
from litestar.enums import ScopeType
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from litestar.types import Message, Scope

from cryptochart.api import gc_pauses
from cryptochart.api.catalog import Catalog
from cryptochart.api.completeness import watch_missing_seconds
from cryptochart.api.config import ApiConfig
from cryptochart.api.consumer import KlineFeed
from cryptochart.api.controllers.gaps import GapsController
from cryptochart.api.controllers.health import HealthController
from cryptochart.api.controllers.klines import KlinesController
from cryptochart.api.controllers.status import StatusController
from cryptochart.api.controllers.symbols import SymbolsController
from cryptochart.api.controllers.ticker import TickerController
from cryptochart.api.controllers.udf import UdfController
from cryptochart.api.errors import EXCEPTION_HANDLERS
from cryptochart.api.fanout import Fanout
from cryptochart.api.frontend import frontend_router
from cryptochart.api.gc_gaps import GapCollector
from cryptochart.api.history_cache import HistoryCache
from cryptochart.api.hub import Hub, database_readers
from cryptochart.api.limits import (
    InProgress,
    RateLimited,
    RequestRate,
    RequestsInProgress,
    SocketsPerAddress,
)
from cryptochart.api.pool import Pool, create_pool
from cryptochart.api.replication import Replication, replication_state, watch_replication
from cryptochart.api.shared import Shared
from cryptochart.api.tickers import Ticker
from cryptochart.api.websocket import live_socket
from cryptochart.core.settings import Settings

log = logging.getLogger(__name__)

UNLIMITED_PATHS = ["^/health$", "^/ready$", "^/metrics$", "^/schema"]
READY_SECONDS = 1.0  # /ready checks the database at most this often
ALL_TICKERS_SECONDS = 5.0  # every symbol's ticker is computed at most this often
SHUTDOWN_SECONDS = 15.0  # the feed, background tasks and pool are given this long to close

DESCRIPTION = """Crypto candlesticks: history in the shape of Binance's /api/v3/klines, and live.

**Live WebSocket `/ws`** (JSON text frames). Client operations:
`{"op":"subscribe","channel":"kline","symbols":["BTCUSDT"],"interval":"1m"}`,
`{"op":"subscribe","channel":"ticker","symbols":["BTCUSDT"]}`, the same with `"unsubscribe"`,
and `{"op":"ping"}`. Server frames: `{"type":"subscribed"|"unsubscribed",...}` (sent before any
frame of the subscription), `{"type":"kline","symbol","interval","k":[openTime,"o","h","l","c",
"v",closeTime,"qv",trades,"tbb","tbq"],"closed","eventTime","sentTime"}` (for intervals above 1s
the candle so far, on every 1s update), `{"type":"ticker","symbol","lastPrice",
"priceChangePercent","eventTime","sentTime"}`, `{"type":"status","source"}`, `{"type":"pong"}`
and `{"type":"error","error","detail"}`. Too many subscriptions is an error frame; a frame over
the size limit closes the socket (1009).
"""


SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


async def with_security_headers(message: Message, scope: Scope) -> None:
    """Every HTTP answer, errors included: no MIME sniffing, no referrer sent on."""
    if message["type"] == "http.response.start":
        headers = MutableScopeHeaders.from_message(message)
        for name, value in SECURITY_HEADERS.items():
            headers[name] = value


def _provide_pool(state: State) -> Pool:
    pool: Pool = state.pool
    return pool


def _provide_catalog(state: State) -> Catalog:
    catalog: Catalog = state.catalog
    return catalog


def _provide_hub(state: State) -> Hub:
    hub: Hub = state.hub
    return hub


def _provide_readiness(state: State) -> Shared[dict[str, str]]:
    readiness: Shared[dict[str, str]] = state.readiness
    return readiness


def _provide_all_tickers(state: State) -> Shared[list[Ticker]]:
    all_tickers: Shared[list[Ticker]] = state.all_tickers
    return all_tickers


def _provide_replication(state: State) -> Shared[Replication]:
    replication: Shared[Replication] = state.replication
    return replication


def _provide_history_cache(state: State) -> HistoryCache:
    history_cache: HistoryCache = state.history_cache
    return history_cache


def _provide_feed(state: State) -> KlineFeed:
    feed: KlineFeed = state.feed
    return feed


def create_app(settings: Settings, config: ApiConfig | None = None) -> Litestar:
    config = config or ApiConfig.from_env()
    fanout = Fanout()

    @asynccontextmanager
    async def services(app: Litestar) -> AsyncIterator[None]:
        """The read-only pool and the Kafka feed; neither has to be up for the API to start."""
        gc_pauses.watch()
        pool = create_pool(settings.api_dsn, config)
        await pool.open(wait=False)
        catalog = Catalog(pool, settings.symbols, config.unknown_symbol_ttl)
        hub = Hub(fanout, database_readers(pool), catalog.saw)
        feed = KlineFeed(
            settings.kafka_bootstrap, settings.klines_topic, asyncio.get_running_loop()
        )
        app.state.update(
            pool=pool,
            catalog=catalog,
            hub=hub,
            feed=feed,
            readiness=Shared[dict[str, str]](READY_SECONDS),
            all_tickers=Shared[list[Ticker]](ALL_TICKERS_SECONDS),
            history_cache=HistoryCache(pool, config.history_cache_bytes),
            replication=replication_state(),
        )
        fan_out = asyncio.create_task(hub.follow_feed(feed.next_batch), name="fan-out")
        gaps = asyncio.create_task(GapCollector(lambda: hub.batch_at).run(), name="gc-gaps")
        gauge = asyncio.create_task(
            watch_missing_seconds(
                pool, settings.symbols, settings.retention_1s, config.gaps_metric_seconds
            ),
            name="missing-seconds",
        )
        replica_lag = asyncio.create_task(
            watch_replication(pool, app.state.replication), name="replica-lag"
        )
        feed.start()

        async def close() -> None:
            await asyncio.to_thread(feed.stop)
            for task in (fan_out, gaps, gauge, replica_lag):
                task.cancel()
            await asyncio.gather(fan_out, gaps, gauge, replica_lag, return_exceptions=True)
            await hub.close()
            await pool.close()

        try:
            yield
        finally:
            # Bounded: a shutdown that waits on something that never comes must still end.
            closing = asyncio.create_task(close(), name="api-shutdown")
            done, _ = await asyncio.wait({closing}, timeout=SHUTDOWN_SECONDS)
            if not done:
                log.warning("shutdown not finished after %.0f s; leaving it", SHUTDOWN_SECONDS)
            elif closing.exception() is not None:
                log.warning("shutdown failed: %s", closing.exception())

    sockets = SocketsPerAddress(config.ws_per_address)
    rate = RequestRate(config.rate_limit_per_minute)
    in_progress = InProgress(config.max_requests_in_progress)
    prometheus = PrometheusConfig(
        app_name="cryptochart-api",
        prefix="cryptochart_api",
        group_path=True,
        scopes={ScopeType.HTTP},
        exclude=["^/metrics$"],
    )
    dependencies: dict[str, Any] = {
        "pool": Provide(_provide_pool, sync_to_thread=False),
        "catalog": Provide(_provide_catalog, sync_to_thread=False),
        "history_cache": Provide(_provide_history_cache, sync_to_thread=False),
        "hub": Provide(_provide_hub, sync_to_thread=False),
        "fanout": Provide(lambda: fanout, sync_to_thread=False),
        "feed": Provide(_provide_feed, sync_to_thread=False),
        "api_config": Provide(lambda: config, sync_to_thread=False),
        "sockets": Provide(lambda: sockets, sync_to_thread=False),
        "readiness": Provide(_provide_readiness, sync_to_thread=False),
        "all_tickers": Provide(_provide_all_tickers, sync_to_thread=False),
        "replication": Provide(_provide_replication, sync_to_thread=False),
        "raw_retention": Provide(lambda: settings.retention_1s, sync_to_thread=False),
    }
    return Litestar(
        route_handlers=[
            KlinesController,
            SymbolsController,
            TickerController,
            GapsController,
            UdfController,
            StatusController,
            HealthController,
            PrometheusController,
            live_socket,
            frontend_router(config.frontend_dir),
        ],
        dependencies=dependencies,
        lifespan=[services],
        middleware=[
            prometheus.middleware,
            DefineMiddleware(RateLimited, rate=rate, exclude=UNLIMITED_PATHS),
            DefineMiddleware(RequestsInProgress, gate=in_progress),
        ],
        cors_config=CORSConfig(allow_origins=list(config.cors_origins), allow_methods=["GET"]),
        exception_handlers=EXCEPTION_HANDLERS,
        before_send=[with_security_headers],
        openapi_config=OpenAPIConfig(
            title="cryptochart API",
            version="1.0.0",
            description=DESCRIPTION,
            path="/schema",
        ),
    )
