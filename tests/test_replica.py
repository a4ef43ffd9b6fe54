"""Reads from a streaming replica: `cryptochart services up` copies a private primary into a hot
standby (idempotent, shown by `services status`); history written by the inserter and the minute
job and served by an API reading the standby equals the primary's once caught up; the standby's
lag shows in ``/api/v1/status`` and ``/metrics`` while its replay is held back; and the API
answers again after the standby is stopped and started, or killed -9 and started.

The clusters are the module's own (``tests/replicated.py``); Kafka is the shared broker, with
topics of each test's own.
"""

from __future__ import annotations

import subprocess
import sys
import time

import psycopg

from cryptochart.core.settings import Settings
from cryptochart.devservices import local
from cryptochart.devservices.replica import SLOT
from tests.api_server import TEST_CONFIG, serve
from tests.pipeline import read_dump, renamed, wait_for
from tests.replicated import (
    CAUGHT_UP,
    FIRST_180,
    LAG,
    LAG_BYTES,
    STANDBY,
    SYMBOL,
    Replicated,
    answers,
    first_flavour_only_fixture,  # noqa: F401 (the fixture first_flavour_only)
    gauge,
    history_fixture,  # noqa: F401 (the fixture history)
    insert,
    kill_server,
    klines,
    lagging,
    note,
    on_replica,
    replicated_fixture,  # noqa: F401 (the fixture replicated)
    restart,
    status,
    write,
)


def test_services_up_starts_the_replica_once(replicated: Replicated) -> None:
    settings, replica = replicated.settings, replicated.replica
    first = local.status(settings)
    assert first[1].startswith("postgres replica: running, pid ")
    assert services("up", settings) == first  # the same pids: nothing started twice
    assert services("status", settings) == first
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


def test_history_from_the_replica_equals_the_primarys(
    replicated: Replicated, history: Settings
) -> None:
    replica = replicated.replica
    seconds = renamed(read_dump(FIRST_180), SYMBOL)
    write(history, seconds[:120])
    # The gauges belong to the process: one API at a time while they are read.
    with serve(history, TEST_CONFIG) as primary_api:
        expected = answers(primary_api)
        assert [len(body) for _, body in list(expected.values())[:3]] == [120, 2, 1]
        assert expected["gaps"][0] == 200
        shown = status(primary_api)
        assert (shown["database"], shown["replicaLagSeconds"], shown["replicaLagBytes"]) == (
            "primary",
            0,
            0,
        )
        wait_for(lambda: gauge(primary_api, STANDBY) == 0, 10, "the primary's gauge")
        assert (gauge(primary_api, LAG), gauge(primary_api, LAG_BYTES)) == (0, 0)
    with serve(on_replica(history, replica), TEST_CONFIG) as replica_api:
        wait_for(lambda: answers(replica_api) == expected, CAUGHT_UP, "the standby's history")
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
            with serve(history, TEST_CONFIG) as primary_api:
                expected = answers(primary_api)
            assert [len(body) for _, body in list(expected.values())[:3]] == [180, 3, 1]
        finally:
            with psycopg.connect(replica.admin_dsn("postgres"), autocommit=True) as conn:
                conn.execute("SELECT pg_wal_replay_resume()")
        resumed = time.monotonic()
        wait_for(lambda: answers(replica_api) == expected, CAUGHT_UP, "the standby to catch up")
        caught_up = time.monotonic() - resumed
        wait_for(lambda: not lagging(replica_api), 10, "the standby's lag to go")
        note(f"{history.db_flavour}: replay resumed: history equal after {caught_up:.2f} s")


def test_api_answers_again_after_the_replica_restarts(
    replicated: Replicated, first_flavour_only: None, history: Settings
) -> None:
    replica = replicated.replica
    insert(history, renamed(read_dump(FIRST_180), SYMBOL)[:60])  # one transaction
    with serve(on_replica(history, replica), TEST_CONFIG) as api:
        wait_for(lambda: len(klines(api, "1s")[1]) == 60, CAUGHT_UP, "the standby's history")
        expected = answers(api)  # all of it, as the primary holds it
        assert [len(body) for _, body in list(expected.values())[:3]] == [60, 1, 1]

        replica.down()
        code, body = klines(api, "1m")
        assert (code, body["detail"]) == (503, "the database is unavailable")
        wait_for(lambda: status(api)["database"] == "unreachable", 10, "status: unreachable")
        note(f"{history.db_flavour}: stopped and started: {restart(api, replica, expected)}")

        kill_server(replica)
        assert klines(api, "1m")[0] == 503
        note(f"{history.db_flavour}: killed -9 and started: {restart(api, replica, expected)}")
        wait_for(lambda: status(api)["database"] == "standby", 10, "status: standby")


def services(action: str, settings: Settings) -> list[str]:
    """`CRYPTOCHART_LOCAL_PG_REPLICA=on cryptochart services <action>` on ``settings``."""
    shown = subprocess.run(
        [sys.executable, "-m", "cryptochart.cli", "services", action],
        capture_output=True,
        text=True,
        env={**settings.as_env(), "CRYPTOCHART_LOCAL_PG_REPLICA": "on"},
        timeout=60,
        check=True,
    )
    return shown.stdout.splitlines()


def first_preload(replicated: Replicated) -> str:
    with psycopg.connect(replicated.settings.database_url) as conn:
        row = conn.execute("SELECT current_setting('shared_preload_libraries')").fetchone()
    return str(row[0]) if row else ""
