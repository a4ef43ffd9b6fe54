"""The replica tests' set-up: a private primary and its standby started as `cryptochart services
up` starts them (the shared cluster's configuration is never touched), a database of each
flavour on it with topics of its own on the shared Kafka, history written through the real
inserter and minute job, and the API's answers, status and gauges read over HTTP."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
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
from cryptochart.devservices.ports import free_port
from cryptochart.devservices.postgres import LocalPostgres, local_url
from cryptochart.devservices.replica import LocalReplica
from cryptochart.ingest.minute_job import MinuteJob
from tests.api_server import ApiServer, insert_seconds
from tests.conftest import flavours_under_test, provisioned
from tests.faults.conftest import delete_topics
from tests.pipeline import produce, running_inserter, wait_for, wait_rows

FIRST_180 = "BTCUSDT-1s-2024-03-01.part01.first180rows.csv"
SYMBOL = "REPLICABTC"
DAY = 1_709_251_200_000  # 2024-03-01, the dump's day
CAUGHT_UP = 30.0  # seconds a standby may take to replay what the primary wrote
FIGURES = Path(tempfile.gettempdir()) / "cryptochart-replica-figures.txt"


@dataclass(frozen=True)
class Replicated:
    """A private primary and its standby, as `cryptochart services up` starts them."""

    settings: Settings
    primary: LocalPostgres
    replica: LocalReplica


@pytest.fixture(scope="module", name="replicated")
def replicated_fixture(base_settings: Settings, services: list[str]) -> Iterator[Replicated]:
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
        after = local.down(settings)  # `services down` stops the standby, then the primary
        assert [line.split(" (")[0] for line in after[:2]] == [
            "postgres: stopped",
            "postgres replica: stopped",
        ]
    finally:
        local.down(settings)
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(name="first_flavour_only")
def first_flavour_only_fixture(flavour: Flavour) -> None:
    """Skips, before any database is made, a test whose subject does not depend on the schema
    on every flavour but the first under test."""
    if flavour != flavours_under_test()[0]:
        pytest.skip("the standby's restarts do not depend on the schema: run on one flavour")


@pytest.fixture(name="history")
def history_fixture(
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


def insert(history: Settings, klines: list[Kline]) -> None:
    """Straight into kline_1s with SQL in one transaction, so a standby shows all or none of
    them (the API computes the candles not rolled up yet)."""
    with psycopg.connect(history.database_url) as conn:
        insert_seconds(conn, klines)


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
    """History of every level, and the symbol's gaps and summary."""
    found = {interval: klines(api, interval) for interval in ("1s", "1m", "5m")}
    day: dict[str, str | int] = {"symbol": SYMBOL, "startTime": DAY, "endTime": DAY + 86_400_000}
    queries: dict[str, dict[str, str | int]] = {"gaps": day, "symbols": {}}
    for path, params in queries.items():
        try:
            response = httpx.get(f"{api.url}/api/v1/{path}", params=params, timeout=10)
            found[path] = (response.status_code, response.json())
        except httpx.HTTPError as exc:
            found[path] = (0, str(exc))
    return found


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


STANDBY = "cryptochart_api_database_standby"
LAG = "cryptochart_api_replica_lag_seconds"
LAG_BYTES = "cryptochart_api_replica_lag_bytes"


def lagging(api: ApiServer) -> bool:
    shown = status(api)
    return bool(shown["replicaLagBytes"]) and bool(shown["replicaLagSeconds"])


def kill_server(replica: LocalReplica) -> None:
    """``kill -9`` of the standby's postmaster; returns once every process of it is gone."""
    postmaster = replica.pid() or 0
    server = [postmaster, *children(postmaster)]
    os.kill(postmaster, signal.SIGKILL)
    # A new server refuses to start while any process of the killed one exists, even
    # unreaped (its lock file names the postmaster; its backends hold the shared memory).
    wait_for(lambda: not any(exists(pid) for pid in server), 30, "the killed server's end")


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
