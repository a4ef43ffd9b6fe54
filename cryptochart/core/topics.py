"""The Kafka topics: 1s klines keyed by symbol, the dead-letter topic for rejected input, and the
compacted instruments topic (one latest message per symbol: its tick and lot size)."""

from __future__ import annotations

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from cryptochart.core.settings import Settings


def ensure_topics(settings: Settings, timeout: float = 30.0) -> list[str]:
    """Create the topics that are missing; return the names created."""
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    existing = set(admin.list_topics(timeout=timeout).topics)
    wanted = [
        NewTopic(
            settings.klines_topic, num_partitions=settings.topic_partitions, replication_factor=-1
        ),
        NewTopic(settings.dead_letter_topic, num_partitions=1, replication_factor=-1),
        NewTopic(
            settings.instruments_topic,
            num_partitions=1,
            replication_factor=-1,
            config={"cleanup.policy": "compact"},
        ),
    ]
    missing = [t for t in wanted if t.topic not in existing]
    if not missing:
        return []
    for topic, future in admin.create_topics(missing, operation_timeout=timeout).items():
        try:
            future.result(timeout)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
        del topic
    return [t.topic for t in missing]
