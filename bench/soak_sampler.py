"""One soak sample: each stage's memory and open files (and PostgreSQL's and Kafka's totals), the
inserter group's consumer lag, how fresh the newest final minute is, and the API's own status.

The stages are found as the children of the running `cryptochart run`, so a stage it restarts is
followed under its new process id (and counted as a restart)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import psutil
import psycopg
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._listoffsets import OffsetSpec  # not re-exported for type checkers

from bench.processes import kafka_processes, postgres_processes
from bench.scratch import dbname
from cryptochart.core.database import Conn, DatabaseUnavailable, connect
from cryptochart.core.settings import Settings

# Each stage by the `cryptochart` subcommand `cryptochart run` starts it with.
STAGES = {"producer": "produce", "inserter": "insert", "minute_job": "minute-job", "api": "serve"}
SERVICES = ("postgres", "kafka")
GROUPS = (*STAGES, *SERVICES)
MIB = 2**20
# The newest minute that every symbol has complete (the minute job's final rows), against the
# server's clock; kline_1m holds only what the minute job aggregated (never real-time rows).
FRESHNESS_SQL = """
    SELECT extract(epoch FROM now() - (max(open_time) + interval '1 minute'))::float8
    FROM kline_1m WHERE seconds = 60 AND open_time > now() - interval '1 hour'"""


def columns() -> list[str]:
    """The sampled series, in the CSV's order (after ``elapsed_s``)."""
    per_group = [f"{g}_{what}" for g in GROUPS for what in ("rss_mib", "fds")]
    return [
        *per_group,
        "postgres_relation_files",
        "postgres_backends",
        "inserter_lag",
        "freshness_s",
        "api_consumer_lag",
        "api_kafka_ready",
        "api_ws_clients",
        "restarts",
    ]


@dataclass(frozen=True)
class Sample:
    """Seconds since the soak started, and each series' value (None: not measurable then)."""

    elapsed: float
    values: dict[str, float | None]


def _stage_of(proc: psutil.Process) -> str | None:
    """The stage a child of `cryptochart run` is (``python -m cryptochart.cli <command> …``)."""
    try:
        args = proc.cmdline()
    except psutil.Error:
        return None
    if "cryptochart.cli" not in args:
        return None
    rest = args[args.index("cryptochart.cli") + 1 :]
    return next((stage for stage, cmd in STAGES.items() if rest[:1] == [cmd]), None)


def _usage(procs: list[psutil.Process]) -> tuple[float | None, float | None]:
    """Summed resident memory (MiB) and open file descriptors of ``procs``; None when none runs."""
    rss, fds, seen = 0, 0, 0
    for proc in procs:
        try:
            with proc.oneshot():
                rss += proc.memory_info().rss
                fds += proc.num_fds()
        except psutil.Error:
            continue
        seen += 1
    return (rss / MIB, float(fds)) if seen else (None, None)


def relation_files(procs: list[psutil.Process]) -> int:
    """Open files of ``procs`` that are table and index files of the cluster (under ``base/``,
    ``global/`` or a tablespace): PostgreSQL's own cache of them, kept open by each process up
    to ``max_files_per_process`` and closed as it sees fit, so they come and go with the tables
    and chunks touched, not with anything the product holds."""
    count = 0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            count += sum(
                1
                for f in proc.open_files()
                if any(part in f.path for part in ("/base/", "/global/", "/pg_tblspc/"))
            )
    return count


def _backend_of(proc: psutil.Process, database: str) -> bool:
    """Whether ``proc`` is a client backend connected to ``database`` ("postgres: role db …")."""
    try:
        words = " ".join(proc.cmdline()).split()
    except psutil.Error:
        return False
    return len(words) >= 3 and words[0] == "postgres:" and words[2] == database


@dataclass
class Sampler:
    """Samples the product that the `cryptochart run` with process id ``run_pid`` supervises."""

    settings: Settings
    run_pid: int
    seen: dict[int, psutil.Process] = field(default_factory=dict)  # every descendant met
    _first: dict[str, int] = field(default_factory=dict)  # each stage's first process id
    _restarts: int = 0
    _admin: AdminClient | None = None
    _conn: Conn | None = None

    def stages(self) -> dict[str, list[psutil.Process]]:
        """Each stage's processes (the child `cryptochart run` started, and its own children)."""
        found: dict[str, list[psutil.Process]] = {stage: [] for stage in STAGES}
        try:
            children = psutil.Process(self.run_pid).children()
        except psutil.Error:
            return found
        for child in children:
            stage = _stage_of(child)
            if stage is None:
                continue
            with contextlib.suppress(psutil.Error):
                found[stage] += [child, *child.children(recursive=True)]
            self._note(stage, child)
        for procs in found.values():
            self.seen.update((p.pid, p) for p in procs)
        return found

    def _note(self, stage: str, child: psutil.Process) -> None:
        first = self._first.setdefault(stage, child.pid)
        if child.pid != first and child.pid not in self.seen:
            self._restarts += 1

    def sample(self, elapsed: float) -> Sample:
        values: dict[str, float | None] = {}
        groups: dict[str, Callable[[], list[psutil.Process]]] = {
            "postgres": lambda: postgres_processes(self.settings, dbname(self.settings)),
            "kafka": lambda: kafka_processes(self.settings),
        }
        procs = {**self.stages(), **{name: find() for name, find in groups.items()}}
        for group in GROUPS:
            values[f"{group}_rss_mib"], values[f"{group}_fds"] = _usage(procs[group])
        # PostgreSQL's descriptors other than its cache of table files (sockets, pipes, logs);
        # that cache, and this database's backends (the connections the stages hold), apart.
        postgres = procs["postgres"]
        cached = relation_files(postgres)
        if values["postgres_fds"] is not None:
            values["postgres_fds"] -= cached
        values["postgres_relation_files"] = float(cached) if postgres else None
        name = dbname(self.settings)
        values["postgres_backends"] = (
            float(sum(1 for p in postgres if _backend_of(p, name))) if postgres else None
        )
        values["inserter_lag"] = self.inserter_lag()
        values["freshness_s"] = self.freshness()
        values.update(self.api_status())
        values["restarts"] = float(self._restarts)
        return Sample(elapsed, values)

    def inserter_lag(self) -> float | None:
        """Messages of the klines topic not yet committed by the inserter group (a partition it
        never committed counts from its earliest offset)."""
        if self._admin is None:
            self._admin = AdminClient({"bootstrap.servers": self.settings.kafka_bootstrap})
        topic = self.settings.klines_topic
        try:
            meta = self._admin.list_topics(topic, timeout=5).topics[topic]
            parts = [TopicPartition(topic, p) for p in meta.partitions]
            group = ConsumerGroupTopicPartitions(self.settings.inserter_group, parts)
            committed = self._admin.list_consumer_group_offsets([group])
            done = committed[self.settings.inserter_group].result(5).topic_partitions
            latest = self._offsets(parts, OffsetSpec.latest())  # type: ignore[no-untyped-call]
            earliest = self._offsets(parts, OffsetSpec.earliest())  # type: ignore[no-untyped-call]
        except Exception:  # Kafka unreachable for a moment: a gap in the series
            return None
        lag = 0
        for tp in done:
            start = tp.offset if tp.offset >= 0 else earliest[tp.partition]
            lag += max(0, latest[tp.partition] - start)
        return float(lag)

    def _offsets(self, parts: list[TopicPartition], spec: OffsetSpec) -> dict[int, int]:
        assert self._admin is not None
        futures = self._admin.list_offsets({tp: spec for tp in parts}, request_timeout=5)
        return {tp.partition: future.result(5).offset for tp, future in futures.items()}

    def freshness(self) -> float | None:
        """Seconds from the end of the newest final kline_1m minute to now."""
        try:
            if self._conn is None or self._conn.closed:
                self._conn = connect(self.settings.database_url, timeout=5)
                self._conn.autocommit = True
            row = self._conn.execute(FRESHNESS_SQL).fetchone()
        except (psycopg.Error, DatabaseUnavailable):
            self._conn = None
            return None
        return float(str(row[0])) if row and row[0] is not None else None

    def api_status(self) -> dict[str, float | None]:
        """The API's /api/v1/status: its own Kafka lag, readiness and WebSocket clients."""
        url = f"http://127.0.0.1:{self.settings.api_port}/api/v1/status"
        try:
            status = httpx.get(url, timeout=3).raise_for_status().json()
        except (httpx.HTTPError, ValueError):
            return dict.fromkeys(("api_consumer_lag", "api_kafka_ready", "api_ws_clients"))
        return {
            "api_consumer_lag": float(status["consumerLag"]),
            "api_kafka_ready": float(bool(status["kafkaReady"])),
            "api_ws_clients": float(status["wsClients"]),
        }

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()

    def leftovers(self) -> list[psutil.Process]:
        """Every stage process met while sampling that still runs."""
        alive = []
        for proc in self.seen.values():
            with contextlib.suppress(psutil.Error):
                if proc.is_running():  # compares the start time too: never a recycled id
                    alive.append(proc)
        return alive
