"""A local Kafka of three brokers (``CRYPTOCHART_LOCAL_KAFKA_BROKERS=3``): the topics get three
replicas and min.insync.replicas 2, and with one broker killed -9 mid-stream every kline still
lands exactly once; the killed broker rejoins on the next ``services up``. The cluster's three JVMs
make that scenario a long one (``make test-faults``)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._config import ConfigResource
from confluent_kafka.admin._metadata import TopicMetadata

from cryptochart.core.settings import Settings
from cryptochart.core.topics import replication
from cryptochart.devservices.kafka import LocalKafka
from cryptochart.devservices.ports import free_ports
from cryptochart.devservices.process import ServiceError
from tests.faults.conftest import Scenario
from tests.faults.expected import past_start
from tests.faults.stages import Stages, backfill
from tests.faults.stored import assert_landed_exactly
from tests.faults.waiting import poll_until

BROKERS = 3


def private_kafka(base: Settings, data_dir: Path, brokers: int) -> LocalKafka:
    """A local Kafka of ``brokers`` nodes in ``data_dir``, on free ports, with the shared jars."""
    port = free_ports(2 * brokers)
    settings = replace(
        base,
        data_dir=data_dir,
        local_kafka_port=port,
        local_kafka_controller_port=port + 1,
        local_kafka_brokers=brokers,
        kafka_heap="256m",
    )
    kafka = LocalKafka(settings)
    kafka.libs.mkdir(parents=True)
    for jar in LocalKafka(base).libs.glob("*.jar"):  # the shared broker's jars
        (kafka.libs / jar.name).symlink_to(jar)
    return LocalKafka(replace(settings, kafka_bootstrap=kafka.bootstrap))


@pytest.fixture(scope="module")
def cluster(base_settings: Settings, services: list[str]) -> Iterator[LocalKafka]:
    data_dir = Path(tempfile.mkdtemp(prefix="cryptochart-kafka-cluster-"))
    kafka = private_kafka(base_settings, data_dir, BROKERS)
    try:
        kafka.up()
        yield kafka
    finally:
        # A throwaway cluster: killed, not shut down in turn (the last broker standing waits
        # out its controlled shutdown without a quorum, 30 s).
        for pid in filter(None, (node.pid() for node in kafka.nodes)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        kafka.down()
        shutil.rmtree(data_dir, ignore_errors=True)


def test_replication_follows_the_brokers() -> None:
    assert [replication(n) for n in (1, 2, 3, 5)] == [(1, 1), (2, 1), (3, 2), (3, 2)]


def test_a_folder_keeps_its_number_of_brokers(base_settings: Settings, tmp_path: Path) -> None:
    kafka = private_kafka(base_settings, tmp_path, 1)
    (kafka.root / "logs").mkdir()
    (kafka.root / "logs" / "meta.properties").write_text("cluster.id=x\n")  # made with one
    grown = LocalKafka(replace(kafka.settings, local_kafka_brokers=3))
    with pytest.raises(ServiceError, match="CRYPTOCHART_LOCAL_KAFKA_BROKERS=3 needs another"):
        grown.up()


def replicas(bootstrap: str, topics: list[str]) -> dict[str, tuple[set[int], str]]:
    """Per topic: the replica counts of its partitions and its min.insync.replicas."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    metadata: dict[str, TopicMetadata] = {}

    def known() -> bool:
        # A new topic reaches a broker's metadata a moment after the controller made it.
        metadata.clear()
        metadata.update(admin.list_topics(timeout=10).topics)
        return metadata.keys() >= set(topics)

    poll_until(known, 30, f"the brokers to know {topics}")
    resources = [ConfigResource(ConfigResource.Type.TOPIC, t) for t in topics]
    configs = {r.name: f.result(10) for r, f in admin.describe_configs(resources).items()}
    return {
        t: (
            {len(p.replicas) for p in metadata[t].partitions.values()},
            str(configs[t]["min.insync.replicas"].value),
        )
        for t in topics
    }


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_broker_killed_mid_stream_loses_nothing(
    cluster: LocalKafka, scenario: Scenario, stages: Stages
) -> None:
    assert cluster.managed
    assert f"{BROKERS} of {BROKERS} brokers running" in cluster.status()
    settings = scenario(
        symbols=("KCLU0USDT", "KCLU1USDT"), kafka_bootstrap=cluster.settings.kafka_bootstrap
    )
    topics = [settings.klines_topic, settings.dead_letter_topic, settings.instruments_topic]
    assert replicas(settings.kafka_bootstrap, topics) == dict.fromkeys(topics, ({3}, "2"))

    url = settings.database_url
    stages.cli("inserter", settings, "insert")
    start = past_start(240)
    klines = backfill(stages, settings, start, 60)
    assert_landed_exactly(url, klines, timeout=60, levels=[])

    victim = cluster.nodes[1]
    pid = victim.pid()
    assert pid is not None
    killed = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    poll_until(lambda: victim.pid() is None, 10, "the broker to die")
    klines += backfill(stages, settings, start + 60_000, 60)
    assert_landed_exactly(url, klines, timeout=90, levels=[])
    stored_without = time.monotonic() - killed

    cluster.up()  # the killed broker rejoins
    assert f"{BROKERS} of {BROKERS} brokers running" in cluster.status()
    klines += backfill(stages, settings, start + 120_000, 60)
    assert_landed_exactly(url, klines, timeout=60, levels=[])
    print(
        f"\none of {BROKERS} brokers killed -9: the next minute of klines was published and "
        f"stored within {stored_without:.1f}s of the kill"
    )
