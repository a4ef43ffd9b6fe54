"""``/api/v1/status``: where the live klines come from, how the API keeps up, and how old the
history it reads is (a standby's replica lag)."""

from __future__ import annotations

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency

from cryptochart.api.consumer import KlineFeed
from cryptochart.api.hub import Hub
from cryptochart.api.pool import Pool
from cryptochart.api.replication import Replication, read_replication
from cryptochart.api.shared import Shared


class Status(msgspec.Struct, rename="camel"):
    source: str  # the latest Kafka message's ``source`` header: binance, sim, replay or unknown
    kafka_ready: bool
    consumer_lag: int
    last_event_time: int | None
    ws_clients: int
    database: str  # what history is read from: primary, standby or unreachable
    replica_lag_seconds: float | None  # 0 on a primary; see api/replication.py
    replica_lag_bytes: int | None


class StatusController(Controller):
    path = "/api/v1/status"
    tags = ("status",)

    @get(summary="The live source and the API's view of Kafka")
    async def status(
        self,
        hub: NamedDependency[Hub],
        feed: NamedDependency[KlineFeed],
        pool: NamedDependency[Pool],
        replication: NamedDependency[Shared[Replication]],
    ) -> Status:
        database = await replication.get(lambda: read_replication(pool))
        return Status(
            source=hub.source,
            kafka_ready=feed.ready,
            consumer_lag=feed.lag,
            last_event_time=hub.last_event_time,
            ws_clients=hub.clients,
            database=database.role,
            replica_lag_seconds=database.lag_seconds,
            replica_lag_bytes=database.lag_bytes,
        )
