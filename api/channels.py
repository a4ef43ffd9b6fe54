"""Fan-out to WebSocket clients: Litestar's ChannelsPlugin, in memory, with a bounded backlog
per subscription that drops its oldest frames when a client reads too slowly."""

from __future__ import annotations

from litestar.channels import ChannelsPlugin, Subscriber
from litestar.channels.backends.memory import MemoryChannelsBackend
from litestar.channels.subscriber import BacklogStrategy

from cryptochart.api.metrics import FRAMES_DROPPED


class CountingSubscriber(Subscriber):
    """A subscriber that counts the frames its full backlog drops."""

    def __init__(
        self,
        plugin: ChannelsPlugin,
        max_backlog: int | None = None,
        backlog_strategy: BacklogStrategy = "backoff",
    ) -> None:
        super().__init__(plugin, max_backlog, backlog_strategy)
        self.max_backlog = max_backlog

    def put_nowait(self, item: bytes | None) -> bool:
        if item is not None and self.max_backlog and self.qsize >= self.max_backlog:
            FRAMES_DROPPED.inc()
        return super().put_nowait(item)


def channels_plugin(backlog: int) -> ChannelsPlugin:
    return ChannelsPlugin(
        backend=MemoryChannelsBackend(),
        arbitrary_channels_allowed=True,
        subscriber_max_backlog=backlog,
        subscriber_backlog_strategy="dropleft",
        subscriber_class=CountingSubscriber,
    )
