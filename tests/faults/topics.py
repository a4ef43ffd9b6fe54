"""What Kafka holds: a topic read from its beginning to its current end."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, KafkaError

from cryptochart.core.kline import Kline, decode


def read_topic(
    bootstrap: str, topic: str, timeout: float = 30.0
) -> list[tuple[bytes, dict[str, bytes]]]:
    """Every message of ``topic`` (value, headers) from the beginning to the current end."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"faults-reader-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "log_level": 3,
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        partitions = set(metadata.topics[topic].partitions)
        consumer.subscribe([topic])
        done: set[int] = set()
        out: list[tuple[bytes, dict[str, bytes]]] = []
        deadline = time.monotonic() + timeout
        while done != partitions:
            assert time.monotonic() < deadline, f"reading {topic} took over {timeout:.0f}s"
            for msg in consumer.consume(1000, 0.5):
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        done.add(int(str(msg.partition())))
                        continue
                    raise AssertionError(f"reading {topic}: {err}")
                headers: dict[str, bytes] = {}
                for header in msg.headers() or []:
                    name, value = header[0], header[1]
                    headers[str(name)] = value.encode() if isinstance(value, str) else value or b""
                out.append((msg.value() or b"", headers))
        return out
    finally:
        consumer.close()


def closed_klines_in(bootstrap: str, topic: str) -> list[Kline]:
    return [k for value, _ in read_topic(bootstrap, topic) if (k := decode(value)).closed]
