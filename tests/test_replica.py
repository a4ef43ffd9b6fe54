"""Reads from a streaming replica: `cryptochart services up` copies a private primary into a hot
standby (idempotent, shown by `services status`); history written by the inserter and the minute
job and served by an API reading the standby equals the primary's once caught up; the standby's
lag shows in ``/api/v1/status`` and ``/metrics`` while its replay is held back; and the API
answers again after the standby is stopped and started, or killed -9 and started.

The clusters are the module's own (the shared one's configuration is never touched); Kafka is
the shared broker, with topics of this module's own.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import sql

from cryptochart.core.database import with_dbname
from cryptochart.core.kline import Kline
from cryptochart.core.settings import Settings
from cryptochart.db.migrate import Flavour
from cryptochart.devservices import local
from cryptochart.devservices.postgres import LocalPostgres, local_url
from cryptochart.devservices.replica import SLOT, LocalReplica
from cryptochart.ingest.minute_job import MinuteJob
from tests.api_server import TEST_CONFIG, ApiServer, serve
from tests.conftest import flavours_under_test, provisioned
from tests.faults.conftest import delete_topics
from tests.faults.stages import free_port
from tests.pipeline import produce, read_dump, renamed, running_inserter, wait_for, wait_rows

FIRST_180 = "BTCUSDT-1s-2024-03-01.part01.first180rows.csv"
SYMBOL = "REPLICABTC"
CAUGHT_UP = 30.0  # seconds a standby may take to replay what the primary wrote
FIGURES = Path(tempfile.gettempdir()) / "cryptochart-replica-figures.txt"


@dataclass(frozen=True)
class Replicated:
    """A private primary and its standby, as `cryptochart services up` starts them."""

    settings: Settings
    primary: LocalPostgres
    replica: LocalReplica


@pytest.fixture(scope="module")
def replicated(base_settings: Settings, services: list[str]) -> Iterator[Replicated]:
    # The postgres user must reach the clusters' folders, so not under pytest's private tmp.
    data_dir = Path(tempfile.mkdtemp(prefix="cryptochart-replica-"))
    data_dir.chmod(0o755)
    pg_port = free_port()
    settings = replace(
        base_settings,
        data_dir=data_dir,
        local_pg_port=pg_port,
        local_pg_replica=True,
        local_pg_replica_port=free_port(),
        local_kafka_port=free_port(),  # the shared broker is external to these settings
        database_url=local_url(data_dir, pg_port, "postgres"),
    )
    primary, replica = LocalPostgres(settings), LocalReplica(settings)
    try:
        local.up(settings)
        yield Replicated(settings, primary, replica)
    finally:
        local.down(settings)
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def history(
    replicated: Replicated, flavour: Flavour, base_settings: Settings
) -> Iterator[Settings]:
    """A migrated database of this flavour on the private primary, with topics of its own."""
    name = f"replica_{secrets.token_hex(3)}_{flavour}"
    with psycopg.connect(replicated.settings.database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = with_dbname(replicated.settings.database_url, name)
    ours = provisioned(
        replace(base_settings, retention_1s="100 years", retention_aggregates="100 years"),
        url,
        flavour,
    )
    yield ours
    delete_topics(ours.kafka_bootstrap, [ours.klines_topic, ours.dead_letter_topic])


def on_replica(history: Settings, replica: LocalReplica) -> Settings:
    """``history`` with the API reading the standby, as its read-only role."""
    name = str(psycopg.conninfo.conninfo_to_dict(history.database_url)["dbname"])
    return replace(history, api_database_url=replica.url(name, "cryptochart_api"))


def write(history: Settings, klines: list[Kline]) -> None:
    """Through the real inserter into kline_1s, then the minute job's pass."""
    before = count_seconds(history)
    produce(history, klines)
    with running_inserter(history):
        wait_rows(history, [SYMBOL], before + len(klines))
    with psycopg.connect(history.database_url) as conn:
        MinuteJob(history).run_once(conn)


def count_seconds(history: Settings) -> int:
    with psycopg.connect(history.database_url) as conn:
        row = conn.execute("SELECT count(*) FROM kline_1s WHERE symbol = %s", (SYMBOL,)).fetchone()
    return int(row[0]) if row else 0


def klines(api: ApiServer, interval: str) -> tuple[int, Any]:
    try:
        response = httpx.get(
            f"{api.url}/api/v1/klines",
            params={"symbol": SYMBOL, "interval": interval, "startTime": 0, "limit": 1000},
            timeout=10,
        )
    except httpx.HTTPError as exc:
        return 0, str(exc)
    return response.status_code, response.json()


def answers(api: ApiServer) -> dict[str, tuple[int, Any]]:
    return {interval: klines(api, interval) for interval in ("1s", "1m", "5m")}


def status(api: ApiServer) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{api.url}/api/v1/status", timeout=10).json()
    return body


def gauge(api: ApiServer, name: str) -> float:
    for line in httpx.get(f"{api.url}/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def note(line: str) -> None:
    """A measured figure, kept for the benchmark notes and printed with the test's output."""
    print(line)
    with FIGURES.open("a") as f:
        f.write(line + "\n")


def test_services_up_starts_the_replica_once(replicated: Replicated) -> None:
    settings, replica = replicated.settings, replicated.replica
    first = local.status(settings)
    assert first[1].startswith("postgres replica: running, pid ")
    assert local.up(settings) == first  # the same pids: nothing started twice
    shown = subprocess.run(
        [sys.executable, "-m", "cryptochart.cli", "services", "status"],
        capture_output=True,
        text=True,
        env=settings.as_env(),
        timeout=60,
        check=True,
    )
    assert shown.stdout.splitlines() == first
    assert replica.password_file.stat().st_mode & 0o777 == 0o600
    with psycopg.connect(replica.url("postgres")) as conn:  # the owner, by its password file
        row = conn.execute(
            "SELECT pg_is_in_recovery(), current_setting('hot_standby'),"
            " current_setting('shared_preload_libraries')"
        ).fetchone()
        assert row is not None and row[:2] == (True, "on")
        assert ("timescaledb" in row[2]) == ("timescaledb" in first_preload(replicated))
    with psycopg.connect(settings.database_url) as conn:
        streaming = conn.execute(
            "SELECT s.state FROM pg_stat_replication s JOIN pg_replication_slots r"
            " ON r.active_pid = s.pid WHERE r.slot_name = %s",
            (SLOT,),
        ).fetchall()
    assert streaming == [("streaming",)]


def first_preload(replicated: Replicated) -> str:
    with psycopg.connect(replicated.settings.database_url) as conn:
        row = conn.execute("SELECT current_setting('shared_preload_libraries')").fetchone()
    return str(row[0]) if row else ""


def test_history_from_the_replica_equals_the_primarys(
    replicated: Replicated, history: Settings
) -> None:
    replica = replicated.replica
    seconds = renamed(read_dump(FIRST_180), SYMBOL)
    write(history, seconds[:120])
    with (
        serve(history, TEST_CONFIG) as primary_api,
        serve(on_replica(history, replica), TEST_CONFIG) as replica_api,
    ):
        expected = answers(primary_api)
        assert [len(body) for _, body in expected.values()] == [120, 2, 1]
        wait_for(lambda: answers(replica_api) == expected, CAUGHT_UP, "the standby's history")
        assert status(primary_api)["database"] == "primary"
        assert (status(primary_api)["replicaLagSeconds"], gauge(primary_api, LAG)) == (0, 0)
        wait_for(lambda: gauge(replica_api, STANDBY) == 1, 10, "the standby gauge")

        # Replay held back: the standby receives the next minute but does not show it yet.
        with psycopg.connect(replica.admin_dsn("postgres"), autocommit=True) as conn:
            conn.execute("SELECT pg_wal_replay_pause()")
        try:
            write(history, seconds[120:])
            wait_for(lambda: lagging(replica_api), CAUGHT_UP, "the standby's lag to show")
            shown = status(replica_api)
            assert shown["database"] == "standby"
            wait_for(
                lambda: gauge(replica_api, LAG) > 0 and gauge(replica_api, LAG_BYTES) > 0,
                10,
                "the lag gauges",
            )
            assert len(klines(replica_api, "1s")[1]) == 120  # as old as its replay
            note(
                f"{history.db_flavour}: replay held back: lag {shown['replicaLagSeconds']:.2f} s, "
                f"{shown['replicaLagBytes']} bytes received and not replayed"
            )
        finally:
            with psycopg.connect(replica.admin_dsn("postgres"), autocommit=True) as conn:
                conn.execute("SELECT pg_wal_replay_resume()")
        resumed = time.monotonic()
        expected = answers(primary_api)
        assert [len(body) for _, body in expected.values()] == [180, 3, 1]
        wait_for(lambda: answers(replica_api) == expected, CAUGHT_UP, "the standby to catch up")
        caught_up = time.monotonic() - resumed
        wait_for(lambda: not lagging(replica_api), 10, "the standby's lag to go")
        note(f"{history.db_flavour}: replay resumed: history equal after {caught_up:.2f} s")


STANDBY = "cryptochart_api_database_standby"
LAG = "cryptochart_api_replica_lag_seconds"
LAG_BYTES = "cryptochart_api_replica_lag_bytes"


def lagging(api: ApiServer) -> bool:
    shown = status(api)
    return bool(shown["replicaLagBytes"]) and bool(shown["replicaLagSeconds"])


def test_api_answers_again_after_the_replica_restarts(
    replicated: Replicated, history: Settings, flavour: Flavour
) -> None:
    if flavour != flavours_under_test()[0]:
        pytest.skip("the standby's restarts do not depend on the schema: run on one flavour")
    replica = replicated.replica
    write(history, renamed(read_dump(FIRST_180), SYMBOL)[:60])
    with (
        serve(history, TEST_CONFIG) as primary_api,
        serve(on_replica(history, replica), TEST_CONFIG) as api,
    ):
        expected = answers(primary_api)
        wait_for(lambda: answers(api) == expected, CAUGHT_UP, "the standby's history")

        replica.down()
        code, body = klines(api, "1m")
        assert (code, body["detail"]) == (503, "the database is unavailable")
        wait_for(lambda: status(api)["database"] == "unreachable", 10, "status: unreachable")
        note(f"{history.db_flavour}: stopped and started: {restart(api, replica, expected)}")

        postmaster = replica.pid() or 0
        server = [postmaster, *children(postmaster)]
        os.kill(postmaster, signal.SIGKILL)
        # A new server refuses to start while any process of the killed one exists, even
        # unreaped (its lock file names the postmaster; its backends hold the shared memory).
        wait_for(lambda: not any(exists(pid) for pid in server), 30, "the killed server's end")
        assert klines(api, "1m")[0] == 503
        note(f"{history.db_flavour}: killed -9 and started: {restart(api, replica, expected)}")
        wait_for(lambda: status(api)["database"] == "standby", 10, "status: standby")


def restart(api: ApiServer, replica: LocalReplica, expected: dict[str, Any]) -> str:
    """Start the standby; how long it took, and then until the API answered it all again."""
    began = time.monotonic()
    replica.start()
    started = time.monotonic()
    wait_for(lambda: answers(api) == expected, CAUGHT_UP, "the API to answer from the standby")
    answered = time.monotonic()
    return f"standby up in {started - began:.2f} s, API answering {answered - started:.2f} s later"


def children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def exists(pid: int) -> bool:
    """True while ``pid`` is a process, a zombie included."""
    return Path(f"/proc/{pid}").exists()
