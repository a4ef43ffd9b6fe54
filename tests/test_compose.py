"""compose.yaml's profile "replicated", read as Compose reads it (merge keys resolved): every
stage at least twice (the migration once), three KRaft brokers whose topics and internal topics
keep three replicas with min.insync.replicas 2, a TimescaleDB primary with a streaming replica
that the APIs read from, and each process given its own role's database URL and no other."""

from __future__ import annotations

from collections import Counter
from dataclasses import fields
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from psycopg.conninfo import conninfo_to_dict

from cryptochart.core.settings import ROOT, Settings
from cryptochart.core.topics import replication

PROFILE = "replicated"
Service = dict[str, Any]

COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES: dict[str, Service] = COMPOSE["services"]
PROFILED = {name: s for name, s in SERVICES.items() if PROFILE in s.get("profiles", [])}
# Every variable naming a database URL, and the one (with its role) each stage may hold.
URL_VARIABLES = {
    f"CRYPTOCHART_{f.name.upper()}" for f in fields(Settings) if f.name.endswith("database_url")
}
OWN_URL = {
    "migrate": ("CRYPTOCHART_DATABASE_URL", "cryptochart"),
    "inserter": ("CRYPTOCHART_INSERTER_DATABASE_URL", "cryptochart_app"),
    "minute job": ("CRYPTOCHART_MINUTE_JOB_DATABASE_URL", "cryptochart_minute_job"),
    "api": ("CRYPTOCHART_API_DATABASE_URL", "cryptochart_api"),
}
COMMANDS = {"produce": "producer", "insert": "inserter", "minute-job": "minute job"}
COMMANDS |= {"aggregate": "minute job", "serve": "api"}


def stage(service: Service) -> str:
    """What a service runs: a cryptochart stage, a Kafka broker or a TimescaleDB server."""
    image = str(service.get("image", ""))
    if image.startswith("apache/kafka:"):
        return "kafka"
    if image.startswith("timescale/timescaledb:"):
        return "database"
    command = service.get("command", [])
    first = command[0] if command else ""
    if "cryptochart migrate" in first:
        return "migrate"
    return COMMANDS.get(first, f"unknown: {command}")


def env(service: Service) -> dict[str, str]:
    return {str(k): str(v) for k, v in (service.get("environment") or {}).items()}


def depends(service: Service) -> dict[str, str]:
    """Services it waits for, and on what condition."""
    wanted = service.get("depends_on") or {}
    if isinstance(wanted, list):
        return dict.fromkeys(wanted, "service_started")
    return {name: str(spec.get("condition", "service_started")) for name, spec in wanted.items()}


def by_stage() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, service in PROFILED.items():
        out.setdefault(stage(service), []).append(name)
    return out


def streaming_replicas() -> dict[str, str]:
    """Database services that start as a base backup of another one: replica -> primary."""
    out = {}
    for name, service in PROFILED.items():
        command = " ".join(service.get("command") or [])
        if stage(service) == "database" and "pg_basebackup" in command:
            assert "--write-recovery-conf" in command, f"{name} would not start as a standby"
            primary = command.split("--host=", 1)[1].split()[0]
            out[name] = primary
    return out


def test_every_stage_runs_at_least_twice_and_the_migration_once() -> None:
    stages = by_stage()
    assert not [s for s in stages if s.startswith("unknown")], stages
    for name in ("producer", "inserter", "minute job", "api"):
        assert len(stages.get(name, [])) >= 2, f"{name}: {stages.get(name)}"
    assert len(stages["migrate"]) == 1, stages["migrate"]
    assert len(stages["kafka"]) == 3, stages["kafka"]
    assert len(stages["database"]) == 2, stages["database"]
    assert len(streaming_replicas()) == 1, streaming_replicas()


def test_the_profile_stands_on_its_own() -> None:
    """It waits only for its own services, so the shape is the profile's, not borrowed."""
    for name, service in PROFILED.items():
        outside = set(depends(service)) - set(PROFILED)
        assert not outside, f"{name} depends on {outside} outside the profile"
    for name, service in SERVICES.items():
        if name not in PROFILED:
            assert not set(depends(service)) & set(PROFILED), name


def test_each_process_holds_only_its_own_database_url() -> None:
    replicas = streaming_replicas()
    (replica, primary), *_ = replicas.items()
    for name, service in PROFILED.items():
        kind = stage(service)
        if kind in ("kafka", "database"):
            continue
        held = URL_VARIABLES & env(service).keys()
        if kind == "producer":
            assert not held, f"{name} holds {held}: the producer never touches the database"
            continue
        variable, role = OWN_URL[kind]
        assert held == {variable}, f"{name} holds {held}, only {variable} wanted"
        url = conninfo_to_dict(env(service)[variable])
        assert url["user"] == role, f"{name} connects as {url['user']}"
        # The APIs read from the replica; everything else writes to the primary.
        assert url["host"] == (replica if kind == "api" else primary), f"{name}: {url['host']}"
        if kind == "api":
            assert depends(service).get(replica) == "service_healthy", f"{name} starts too soon"


def test_brokers_form_one_cluster_replicating_three_times() -> None:
    brokers = {name: env(PROFILED[name]) for name in by_stage()["kafka"]}
    factor, min_isr = replication(len(brokers))
    assert (factor, min_isr) == (3, 2)
    ids = {name: e["KAFKA_NODE_ID"] for name, e in brokers.items()}
    assert len(set(ids.values())) == 3, ids
    voters = {f"{node_id}@{name}:9093" for name, node_id in ids.items()}
    advertised = {
        e["KAFKA_ADVERTISED_LISTENERS"].removeprefix("PLAINTEXT://") for e in brokers.values()
    }
    assert len({e["CLUSTER_ID"] for e in brokers.values()}) == 1
    for name, e in brokers.items():
        assert set(e["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")) == voters, name
        assert e["KAFKA_PROCESS_ROLES"] == "broker,controller", name
        assert e["KAFKA_DEFAULT_REPLICATION_FACTOR"] == str(factor), name
        assert e["KAFKA_MIN_INSYNC_REPLICAS"] == str(min_isr), name
        for internal in ("OFFSETS_TOPIC", "TRANSACTION_STATE_LOG", "SHARE_COORDINATOR_STATE_TOPIC"):
            assert e[f"KAFKA_{internal}_REPLICATION_FACTOR"] == str(factor), (name, internal)
        for internal in ("TRANSACTION_STATE_LOG", "SHARE_COORDINATOR_STATE_TOPIC"):
            assert e[f"KAFKA_{internal}_MIN_ISR"] == str(min_isr), (name, internal)
        assert e["KAFKA_LOG_DIRS"] in {v.split(":", 1)[1] for v in PROFILED[name]["volumes"]}
    # Every client knows every broker; the migration creates the topics (with replication()'s
    # factor for the brokers it sees) only once all three are healthy.
    for name, service in PROFILED.items():
        if stage(service) not in ("kafka", "database"):
            assert set(env(service)["CRYPTOCHART_KAFKA_BOOTSTRAP"].split(",")) == advertised, name
    (migrate,) = by_stage()["migrate"]
    for broker in brokers:
        assert depends(PROFILED[migrate]).get(broker) == "service_healthy", broker


def test_inserters_are_static_members_with_their_own_ids() -> None:
    ids = [env(PROFILED[n]).get("CRYPTOCHART_INSERTER_INSTANCE_ID") for n in by_stage()["inserter"]]
    assert all(ids) and len(set(ids)) == len(ids), ids


def test_producers_split_the_symbols() -> None:
    """Two producers of one symbol would publish each of its klines twice."""
    counts: Counter[str] = Counter()
    for name in by_stage()["producer"]:
        command = PROFILED[name]["command"]
        assert "--symbols" in command, f"{name} produces every symbol"
        counts.update(command[command.index("--symbols") + 1].split(","))
    assert counts and max(counts.values()) == 1, counts


@pytest.mark.parametrize("name", sorted(streaming_replicas()))
def test_the_replica_is_a_standby_of_the_primary(name: str) -> None:
    primary = streaming_replicas()[name]
    assert PROFILED[name]["image"] == PROFILED[primary]["image"]
    assert depends(PROFILED[name]).get(primary) == "service_healthy"
    # The primary lets the replication role in: its first start runs the profile's init script.
    targets = [c["target"] for c in PROFILED[primary].get("configs", [])]
    sources = [c["source"] for c in PROFILED[primary].get("configs", [])]
    assert any(t.startswith("/docker-entrypoint-initdb.d/") for t in targets), targets
    script = "".join(COMPOSE["configs"][s]["content"] for s in sources)
    assert "REPLICATION" in script and "host replication replicator" in script
    assert env(PROFILED[name])["PGPASSWORD"] == env(PROFILED[primary])["REPLICATION_PASSWORD"]
