"""``/api/v1/status``: where the live klines come from, and how the API keeps up."""

from __future__ import annotations

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency

from cryptochart.api.consumer import KlineFeed
from cryptochart.api.hub import Hub


class Status(msgspec.Struct, rename="camel"):
    source: str  # the latest Kafka message's ``source`` header: binance, sim, replay or unknown
    kafka_ready: bool
    consumer_lag: int
    last_event_time: int | None
    ws_clients: int


class StatusController(Controller):
    path = "/api/v1/status"
    tags = ("status",)

    @get(summary="The live source and the API's view of Kafka")
    async def status(self, hub: NamedDependency[Hub], feed: NamedDependency[KlineFeed]) -> Status:
        return Status(
            source=hub.source,
            kafka_ready=feed.ready,
            consumer_lag=feed.lag,
            last_event_time=hub.last_event_time,
            ws_clients=hub.clients,
        )
