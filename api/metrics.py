"""The API's own Prometheus metrics (HTTP requests are counted by Litestar's Prometheus plugin)."""

from __future__ import annotations

import functools
from typing import TypeVar

from prometheus_client import Counter, Gauge, Histogram

WS_CLIENTS = Gauge("cryptochart_api_ws_clients", "Open WebSocket connections")
FRAMES_PUBLISHED = Counter(
    "cryptochart_api_frames_published_total",
    "Frames encoded once and fanned out to a channel's subscribers",
    ["type"],
)
FRAMES_SENT = Counter("cryptochart_api_frames_sent_total", "Frames written to WebSocket clients")
FRAMES_DROPPED = Counter(
    "cryptochart_api_frames_dropped_total",
    "Older frames dropped from a slow client's full backlog",
)
KAFKA_MESSAGES = Counter(
    "cryptochart_api_kafka_messages_total", "Kline messages consumed", ["source"]
)
KAFKA_UNDECODABLE = Counter(
    "cryptochart_api_kafka_undecodable_total",
    "Kafka messages that are not valid klines (not shown)",
)
CONSUMER_LAG = Gauge(
    "cryptochart_api_consumer_lag", "Messages on the klines topic not consumed by the API yet"
)
MISSING_SECONDS = Gauge(
    "cryptochart_api_missing_seconds",
    "Seconds of kline_1s missing per configured symbol in the 60 whole minutes before the current"
    " one (recomputed every CRYPTOCHART_API_GAPS_METRIC_SECONDS)",
    ["symbol"],
)
STANDBY = Gauge(
    "cryptochart_api_database_standby",
    "1 when the API reads from a hot standby, 0 from a primary (NaN: unreachable)",
)
GC_FROZEN = Gauge(
    "cryptochart_api_gc_frozen_objects",
    "Objects of the start-up heap frozen out of the garbage collector's passes (gc.freeze)",
)
GC_PAUSES = Histogram(
    "cryptochart_api_gc_pause_seconds",
    "Garbage collector passes, each stopping the event loop, by generation (2: full)",
    ["generation"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
REPLICA_LAG_SECONDS = Gauge(
    "cryptochart_api_replica_lag_seconds",
    "Seconds since the standby's last replayed commit while received WAL waits to be replayed;"
    " 0 on a primary or when nothing waits",
)
REPLICA_LAG_BYTES = Gauge(
    "cryptochart_api_replica_lag_bytes",
    "WAL the standby has received but not replayed yet; 0 on a primary",
)


_Labelled = TypeVar("_Labelled", Counter, Histogram)


@functools.cache
def labelled(metric: _Labelled, value: str) -> _Labelled:
    """``metric``'s child for the ``value`` of its one label, looked up once: the lookup per
    message or frame is costly on the live path."""
    return metric.labels(value)
