"""A local Apache Kafka in KRaft mode from Maven Central jars: one node by default, or a cluster
of ``CRYPTOCHART_LOCAL_KAFKA_BROKERS`` nodes, each a broker and a controller in one JVM.

``kafka/pom.xml`` beside this module pins the version; its jars go to ``<data_dir>/kafka/libs``.
The first node lives in ``<data_dir>/kafka`` on the configured ports; node *n* of a cluster in
``<data_dir>/kafka/node-<n>``, on those ports plus 2(n - 1).
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
from cryptochart.core.topics import replication
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
PORT_STRIDE = 2  # node n's ports are the first node's + 2(n - 1): a broker and a controller each


@dataclass(frozen=True)
class KafkaNode:
    """One node of the local cluster: its id, its broker and controller ports and its folder."""

    node_id: int
    port: int
    controller_port: int
    root: Path

    @property
    def pid_file(self) -> Path:
        return self.root / "kafka.pid"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def pid(self) -> int | None:
        return read_pid(self.pid_file)


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
    def nodes(self) -> list[KafkaNode]:
        s = self.settings
        return [
            KafkaNode(
                n,
                s.local_kafka_port + PORT_STRIDE * (n - 1),
                s.local_kafka_controller_port + PORT_STRIDE * (n - 1),
                self.root if n == 1 else self.root / f"node-{n}",
            )
            for n in range(1, s.local_kafka_brokers + 1)
        ]

    @property
    def bootstrap(self) -> str:
        """Every node's address: what clients should be given on a cluster."""
        return ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)

    @property
    def managed(self) -> bool:
        """True when the bootstrap addresses are this local cluster's (else Kafka is external)."""
        ports = {str(node.port) for node in self.nodes}
        servers = [server.rpartition(":") for server in self.settings.kafka_bootstrap.split(",")]
        return all(host in LOOPBACK and port in ports for host, _, port in servers)

    def pid(self) -> int | None:
        """The first node's process."""
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
        """Format and start every node that is not running; wait until all of them serve."""
        self.install()
        self._refuse_changed_size()
        cluster_id = self._cluster_id() or new_cluster_id()
        for node in self.nodes:
            config = self._write_config(node)
            if not (node.logs / "meta.properties").exists():
                run(
                    self._java(
                        "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(config)
                    ),
                    "formatting Kafka storage",
                )
        for node in self.nodes:
            if node.pid() is None:
                self._start(node)
        wait_until(self._answers_metadata, 90, f"Kafka at {self.bootstrap}")

    def _start(self, node: KafkaNode) -> None:
        ensure_port_free(node.port, "Kafka")
        ensure_port_free(node.controller_port, "Kafka's controller")
        log = (node.root / "server.log").open("ab")
        proc = subprocess.Popen(
            self._java("kafka.Kafka", str(node.root / "server.properties")),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # outlives the command that started it
        )
        node.pid_file.write_text(f"{proc.pid}\n")

    def _cluster_id(self) -> str | None:
        """The id a node already formatted carries, which the others must share."""
        for node in self.nodes:
            meta = node.logs / "meta.properties"
            if meta.exists():
                for line in meta.read_text().splitlines():
                    if line.startswith("cluster.id="):
                        return line.split("=", 1)[1].strip()
        return None

    def _refuse_changed_size(self) -> None:
        """A KRaft quorum is fixed when its storage is formatted: a data folder made for another
        number of brokers cannot be reused."""
        made = self.root / "brokers"
        wanted = str(self.settings.local_kafka_brokers)
        formatted = (self.root / "logs" / "meta.properties").exists()
        before = made.read_text().strip() if made.exists() else ("1" if formatted else wanted)
        if before != wanted:
            raise ServiceError(
                f"Kafka in {self.root} was made with {before} broker(s); "
                f"CRYPTOCHART_LOCAL_KAFKA_BROKERS={wanted} needs another data folder "
                f"(CRYPTOCHART_DATA_DIR) or that folder's logs removed"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        made.write_text(f"{wanted}\n")

    def down(self) -> None:
        for node in self.nodes:
            pid = node.pid()
            if pid is not None:
                stop_pid(pid, timeout=30)
            node.pid_file.unlink(missing_ok=True)

    def status(self) -> str:
        if not self.managed:
            return f"kafka: external at {self.settings.kafka_bootstrap}"
        pids = [node.pid() for node in self.nodes]
        if len(pids) == 1:
            where = f"{self.settings.kafka_bootstrap}, data {self.root / 'logs'}"
            state = f"running, pid {pids[0]}" if pids[0] else "stopped"
            return f"kafka: {state} ({where})"
        running = [str(pid) for pid in pids if pid]
        state = f"{len(running)} of {len(pids)} brokers running" + (
            f", pids {' '.join(running)}" if running else ""
        )
        return f"kafka: {state} ({self.bootstrap}, data {self.root})"

    def _answers_metadata(self) -> bool:
        for node in self.nodes:
            if node.pid() is None:
                raise ServiceError(
                    f"Kafka exited during start-up; see {node.root / 'server.log'}"
                    + _errors_in(node.root / "server.log")
                )
        # log_level 0: connection refusals while the broker starts are expected, not news.
        admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0})
        try:
            brokers = admin.list_topics(timeout=2).brokers
        except Exception:  # KafkaException while the broker is still starting
            return False
        return len(brokers) == len(self.nodes)

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

    def _write_config(self, node: KafkaNode) -> Path:
        s = self.settings
        node.root.mkdir(parents=True, exist_ok=True)
        node.root.chmod(0o700)  # the broker's logs hold every kline: the owner's alone
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self.nodes)
        factor, min_isr = replication(len(self.nodes))
        config = node.root / "server.properties"
        config.write_text(
            "process.roles=broker,controller\n"
            f"node.id={node.node_id}\n"
            f"controller.quorum.voters={voters}\n"
            f"listeners=PLAINTEXT://127.0.0.1:{node.port},"
            f"CONTROLLER://127.0.0.1:{node.controller_port}\n"
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{node.port}\n"
            "controller.listener.names=CONTROLLER\n"
            "inter.broker.listener.name=PLAINTEXT\n"
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n"
            f"log.dirs={node.logs}\n"
            f"num.partitions={s.topic_partitions}\n"
            f"default.replication.factor={factor}\n"
            f"min.insync.replicas={min_isr}\n"
            f"offsets.topic.replication.factor={factor}\n"
            "offsets.topic.num.partitions=10\n"
            f"transaction.state.log.replication.factor={factor}\n"
            f"transaction.state.log.min.isr={min_isr}\n"
            f"share.coordinator.state.topic.replication.factor={factor}\n"
            f"share.coordinator.state.topic.min.isr={min_isr}\n"
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


def _errors_in(log: Path, most: int = 5) -> str:
    """The log's last ERROR lines (and the exception lines after them), for the message of a
    start-up that failed: the folder may be gone by the time someone reads it."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    wanted = [line for line in lines if "ERROR" in line or "Exception" in line][-most:]
    return "".join(f"\n  {line[:300]}" for line in wanted)
