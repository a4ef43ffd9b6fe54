"""A single-node Apache Kafka (KRaft: broker and controller in one JVM) from Maven Central jars.

``kafka/pom.xml`` beside this module pins the version; its jars go to ``<data_dir>/kafka/libs``.
"""

from __future__ import annotations

import base64
import os
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka.admin import AdminClient

from cryptochart.core.settings import ROOT, Settings
from cryptochart.devservices.process import (
    ServiceError,
    ensure_port_free,
    read_pid,
    run,
    stop_pid,
    wait_until,
)

HERE = Path(__file__).resolve().parent
POM = HERE / "kafka" / "pom.xml"
LOG_CONFIG = HERE / "kafka" / "log4j2.properties"
LOOPBACK = {"127.0.0.1", "localhost"}


@dataclass(frozen=True)
class LocalKafka:
    settings: Settings

    @property
    def root(self) -> Path:
        return self.settings.data_dir / "kafka"

    @property
    def libs(self) -> Path:
        return self.root / "libs"

    @property
    def pid_file(self) -> Path:
        return self.root / "kafka.pid"

    @property
    def managed(self) -> bool:
        """True when the bootstrap address is this local broker (else Kafka is external)."""
        servers = self.settings.kafka_bootstrap.split(",")
        host, _, port = servers[0].rpartition(":")
        return (
            len(servers) == 1 and host in LOOPBACK and port == str(self.settings.local_kafka_port)
        )

    def pid(self) -> int | None:
        return read_pid(self.pid_file)

    def install(self) -> None:
        """Copy the pinned broker jars from Maven Central (cached in .cache/m2) once."""
        if any(self.libs.glob("kafka_2.13-*.jar")):
            return
        run(
            [
                "mvn",
                "-q",
                "-B",
                "-f",
                str(POM),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={self.libs}",
                "-DincludeScope=runtime",
                f"-Dmaven.repo.local={ROOT / '.cache' / 'm2'}",
            ],
            "downloading the Kafka broker with Maven",
        )

    def up(self) -> None:
        self.install()
        config = self._write_config()
        if not (self.root / "logs" / "meta.properties").exists():
            cluster_id = new_cluster_id()
            run(
                self._java(
                    "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(config)
                ),
                "formatting Kafka storage",
            )
        if self.pid() is None:
            ensure_port_free(self.settings.local_kafka_port, "Kafka")
            ensure_port_free(self.settings.local_kafka_controller_port, "Kafka's controller")
            log = (self.root / "server.log").open("ab")
            proc = subprocess.Popen(
                self._java("kafka.Kafka", str(config)),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # outlives the command that started it
            )
            self.pid_file.write_text(f"{proc.pid}\n")
        wait_until(self._answers_metadata, 90, f"Kafka at {self.settings.kafka_bootstrap}")

    def down(self) -> None:
        pid = self.pid()
        if pid is not None:
            stop_pid(pid, timeout=30)
        self.pid_file.unlink(missing_ok=True)

    def status(self) -> str:
        if not self.managed:
            return f"kafka: external at {self.settings.kafka_bootstrap}"
        pid = self.pid()
        where = f"{self.settings.kafka_bootstrap}, data {self.root / 'logs'}"
        return f"kafka: {'running, pid ' + str(pid) if pid else 'stopped'} ({where})"

    def _answers_metadata(self) -> bool:
        if self.pid() is None:
            raise ServiceError(f"Kafka exited during start-up; see {self.root / 'server.log'}")
        # log_level 0: connection refusals while the broker starts are expected, not news.
        admin = AdminClient({"bootstrap.servers": self.settings.kafka_bootstrap, "log_level": 0})
        try:
            admin.list_topics(timeout=2)
        except Exception:  # KafkaException while the broker is still starting
            return False
        return True

    def _java(self, main: str, *args: str) -> list[str]:
        heap = self.settings.kafka_heap
        return [
            "java",
            f"-Xmx{heap}",
            f"-Xms{heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:TieredStopAtLevel=1" if main != "kafka.Kafka" else "-XX:+UseStringDeduplication",
            f"-Dlog4j2.configurationFile={LOG_CONFIG}",
            "-Djava.awt.headless=true",
            "-cp",
            f"{self.libs}{os.sep}*",
            main,
            *args,
        ]

    def _write_config(self) -> Path:
        s = self.settings
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o700)  # the broker's logs hold every kline: the owner's alone
        config = self.root / "server.properties"
        config.write_text(
            "process.roles=broker,controller\n"
            "node.id=1\n"
            f"controller.quorum.voters=1@127.0.0.1:{s.local_kafka_controller_port}\n"
            f"listeners=PLAINTEXT://127.0.0.1:{s.local_kafka_port},"
            f"CONTROLLER://127.0.0.1:{s.local_kafka_controller_port}\n"
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{s.local_kafka_port}\n"
            "controller.listener.names=CONTROLLER\n"
            "inter.broker.listener.name=PLAINTEXT\n"
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n"
            f"log.dirs={self.root / 'logs'}\n"
            f"num.partitions={s.topic_partitions}\n"
            "offsets.topic.replication.factor=1\n"
            "offsets.topic.num.partitions=10\n"
            "transaction.state.log.replication.factor=1\n"
            "transaction.state.log.min.isr=1\n"
            "share.coordinator.state.topic.replication.factor=1\n"
            "share.coordinator.state.topic.min.isr=1\n"
            "group.initial.rebalance.delay.ms=0\n"
            "auto.create.topics.enable=false\n"
            "log.retention.hours=24\n"
            "num.network.threads=2\n"
            "num.io.threads=4\n"
        )
        return config


def new_cluster_id() -> str:
    """A random KRaft cluster id: a UUID in URL-safe base64, never starting with "-" (the
    storage tool would read it as an option; Kafka's own generator avoids it the same way)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id
