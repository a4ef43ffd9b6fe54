"""The local services and the command line, as a user meets them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from confluent_kafka import Consumer, Producer

from cryptochart.core.settings import Settings, SettingsError
from cryptochart.devservices import local
from cryptochart.devservices.ports import free_port
from cryptochart.devservices.postgres import (
    SERVER_CONF,
    LocalPostgres,
    local_url,
    server_bindir,
    timescaledb_installed,
)


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cryptochart.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_services_up_is_idempotent(base_settings: Settings, services: list[str]) -> None:
    again = local.up(base_settings)
    assert again == services  # same pids: nothing was started twice
    assert all("running, pid" in line for line in again)
    status = cli("services", "status")
    assert status.returncode == 0
    assert status.stdout.splitlines() == again


def test_external_services_are_left_alone() -> None:
    external = Settings.from_env(
        {
            "CRYPTOCHART_DATABASE_URL": "postgresql://u@db.example:5432/x",
            "CRYPTOCHART_KAFKA_BOOTSTRAP": "kafka.example:9092",
        }
    )
    assert local.status(external) == [
        "postgres: external at db.example:5432/x",
        "kafka: external at kafka.example:9092",
    ]


def test_kafka_round_trip(settings: Settings) -> None:
    key, value = b"BTCUSDT", uuid.uuid4().bytes
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    producer.produce(settings.klines_topic, key=key, value=value)
    assert producer.flush(30) == 0
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"roundtrip-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([settings.klines_topic])
    try:
        received = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is not None and msg.error() is None and msg.value() == value:
                received = msg
                break
        assert received is not None, "the produced message never came back"
        assert received.key() == key
    finally:
        consumer.close()


def test_bad_database_url_gives_one_clear_line() -> None:
    result = cli("migrate", env={"CRYPTOCHART_DATABASE_URL": "postgresql://nobody@127.0.0.1:9/x"})
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("cryptochart migrate: error: cannot connect to nobody@127.0.0.1:9/x")


def test_bad_setting_names_the_variable() -> None:
    result = cli("services", "status", env={"CRYPTOCHART_TOPIC_PARTITIONS": "many"})
    assert result.returncode == 1
    assert "CRYPTOCHART_TOPIC_PARTITIONS='many'" in result.stderr
    assert "Traceback" not in result.stderr


def test_every_subcommand_has_help() -> None:
    from cryptochart.cli import build_parser

    action = build_parser()._subparsers._group_actions[0]  # type: ignore[union-attr]
    commands: dict[str, object] = dict(action.choices or {})
    assert {"services", "migrate"} <= set(commands)
    for name in commands:
        result = cli(name, "--help")
        assert result.returncode == 0 and "usage: cryptochart" in result.stdout, name


def test_a_taken_port_is_reported_not_fought_over(
    tmp_path: Path, base_settings: Settings, services: list[str]
) -> None:
    from cryptochart.devservices.kafka import LocalKafka
    from cryptochart.devservices.process import ServiceError

    # A second broker of another data folder, on the port the running one holds.
    other = replace(base_settings, data_dir=tmp_path)
    kafka = LocalKafka(other)
    kafka.libs.mkdir(parents=True)
    for jar in LocalKafka(base_settings).libs.glob("*.jar"):
        (kafka.libs / jar.name).symlink_to(jar)
    taken = f"port {base_settings.local_kafka_port} on 127.0.0.1 is taken"
    with pytest.raises(ServiceError, match=re.escape(taken)):
        kafka.up()


def test_api_settings_come_from_the_environment() -> None:
    from cryptochart.api.config import ApiConfig

    config = ApiConfig.from_env(
        {
            "CRYPTOCHART_API_WS_ORIGINS": "https://a.example, https://b.example",
            "CRYPTOCHART_API_WS_BACKLOG": "32",
        }
    )
    assert config.ws_origins == ("https://a.example", "https://b.example")
    assert config.ws_backlog == 32
    with pytest.raises(SettingsError, match="CRYPTOCHART_API_WS_BACKLOG='-1'"):
        ApiConfig.from_env({"CRYPTOCHART_API_WS_BACKLOG": "-1"})


def test_kafka_cluster_ids_never_look_like_options() -> None:
    from cryptochart.devservices.kafka import new_cluster_id

    ids = {new_cluster_id() for _ in range(5000)}  # about 78 would start with "-" by chance
    assert len(ids) == 5000
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)


def test_the_schema_flavour_setting_is_checked() -> None:
    assert Settings.from_env({}).db_flavour == "auto"
    assert Settings.from_env({"CRYPTOCHART_DB_FLAVOUR": "postgres"}).db_flavour == "postgres"
    with pytest.raises(SettingsError, match=r"CRYPTOCHART_DB_FLAVOUR='mongo'.*auto, timescaledb"):
        Settings.from_env({"CRYPTOCHART_DB_FLAVOUR": "mongo"})


def test_a_cluster_made_before_timescaledb_is_fixed_by_services_up(
    base_settings: Settings, services: list[str]
) -> None:
    """A cluster without the preload (made before TimescaleDB was installed) keeps its data and
    preloads the extension after one `services up`, which restarts it."""
    if not timescaledb_installed(server_bindir()):
        pytest.skip("TimescaleDB is not installed (scripts/timescaledb.sh)")
    # The postgres user must reach the cluster's folder, so not under pytest's private tmp.
    data_dir = Path(tempfile.mkdtemp(prefix="cryptochart-oldcluster-"))
    data_dir.chmod(0o755)
    port = free_port()
    old = replace(
        base_settings,
        data_dir=data_dir,
        local_pg_port=port,
        database_url=local_url(data_dir, port, "kept"),
    )
    postgres = LocalPostgres(old)
    try:
        postgres.up()
        postgres.down()
        # As a cluster made before the preload: no include, no file, started as it is.
        main_conf = postgres.cluster / "postgresql.conf"
        main_conf.write_text(
            main_conf.read_text().replace(f"include_if_exists = '{SERVER_CONF}'", "")
        )
        (postgres.cluster / SERVER_CONF).unlink()
        postgres.start()
        with psycopg.connect(old.database_url, autocommit=True) as conn:
            assert conn.execute("SHOW shared_preload_libraries").fetchone() == ("",)
            conn.execute("CREATE TABLE kept AS SELECT 42 AS answer")
        first_pid = postgres.pid()
        postgres.up()  # finds the preload missing: one restart
        second_pid = postgres.pid()
        postgres.up()  # nothing changed since: no restart
        assert postgres.pid() == second_pid != first_pid
        with psycopg.connect(old.database_url) as conn:
            assert conn.execute("SHOW shared_preload_libraries").fetchone() == ("timescaledb",)
            assert conn.execute("SELECT answer FROM kept").fetchone() == (42,)
    finally:
        postgres.down()
        shutil.rmtree(data_dir, ignore_errors=True)


def test_a_child_process_reads_exactly_the_parents_settings() -> None:
    """Settings → environment → Settings is the identity, for every setting, whatever the
    parent's own environment says."""
    ours = replace(
        Settings(),
        symbols=("AAAUSDT", "BBBUSDT"),
        retention_1s="3 days",
        db_flavour="postgres",
        insert_batch_seconds=0.5,
        use_partman=False,
        inserter_instance_id="",
    )
    noisy = {"CRYPTOCHART_RETENTION_1S": "9 days", "CRYPTOCHART_INSERTER_INSTANCE_ID": "x"}
    assert Settings.from_env(ours.as_env(noisy)) == ours


def test_relative_times_read_as_the_readme_writes_them() -> None:
    from cryptochart.cli import parse_args

    args = parse_args(["backfill", "--from", "-1h", "--to", "-30m", "--symbols", "BTCUSDT"])
    assert (args.from_, args.to, args.symbols) == ("-1h", "-30m", "BTCUSDT")
    assert parse_args(["backfill", "--from=-2h"]).from_ == "-2h"
