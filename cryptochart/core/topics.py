"""The Kafka topics: 1s klines keyed by symbol, the dead-letter topic for rejected input, and the
compacted instruments topic (one latest message per symbol: its tick and lot size)."""

from __future__ import annotations

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from cryptochart.core.settings import Settings


def replication(brokers: int) -> tuple[int, int]:
    """Replication factor and min.insync.replicas for a cluster of ``brokers``: three copies
    where there are three brokers or more, a write acknowledged by two of them, so one broker may
    be lost without losing or refusing a kline; fewer brokers, a copy on each and one enough."""
    factor = min(3, brokers)
    return factor, 2 if factor >= 3 else 1


def ensure_topics(settings: Settings, timeout: float = 30.0) -> list[str]:
    """Create the topics that are missing, replicated as :func:`replication` says for the
    cluster's brokers; return the names created."""
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    metadata = admin.list_topics(timeout=timeout)
    existing = set(metadata.topics)
    factor, min_isr = replication(len(metadata.brokers))
    durable = {"min.insync.replicas": str(min_isr)}
    wanted = [
        NewTopic(
            settings.klines_topic,
            num_partitions=settings.topic_partitions,
            replication_factor=factor,
            config=durable,
        ),
        NewTopic(
            settings.dead_letter_topic, num_partitions=1, replication_factor=factor, config=durable
        ),
        NewTopic(
            settings.instruments_topic,
            num_partitions=1,
            replication_factor=factor,
            config={"cleanup.policy": "compact", **durable},
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
