"""The standby the API reads from, restarted again and again while klines stream in: stopped
cleanly and killed -9 in turns while the inserter writes, each time the API answers again with
everything written before the restart, and at the end its history equals the primary's (a long
scenario: `make test-faults`; the short one is ``tests/test_replica.py``)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import httpx
import msgspec
import psycopg
import pytest

from cryptochart.core.kline import Kline
from cryptochart.core.settings import Settings
from cryptochart.devservices.replica import LocalReplica
from cryptochart.ingest.minute_job import MinuteJob
from cryptochart.ingest.producer import KlineProducer
from tests.api_server import TEST_CONFIG, ApiServer, serve
from tests.faults.stored import assert_final_levels, assert_landed_exactly
from tests.pipeline import read_dump, renamed, running_inserter, wait_for, wait_rows
from tests.replicated import (
    CAUGHT_UP,
    FIRST_180,
    SYMBOL,
    Replicated,
    answers,
    count_seconds,
    first_flavour_only_fixture,  # noqa: F401 (the fixture first_flavour_only)
    history_fixture,  # noqa: F401 (the fixture history)
    kill_server,
    note,
    on_replica,
    replicated_fixture,  # noqa: F401 (the fixture replicated)
    status,
)

ROUNDS = 5  # each: a clean stop and a kill -9
COPIES = 200  # at most: the dump's 180 seconds, shifted, ten hours of klines
BATCH = 20  # klines produced at a time, every PACE seconds, until the rounds are over
PACE = 0.1
SAMPLE_EVERY = 0.2  # seconds between readings of the standby's lag


def shifted(klines: list[Kline], copies: int) -> Iterator[Kline]:
    """``klines`` followed by copies of themselves moved on by their span each time."""
    span = klines[-1].open_time - klines[0].open_time + 1000
    for n in range(copies):
        for k in klines:
            moved = n * span
            yield msgspec.structs.replace(
                k,
                open_time=k.open_time + moved,
                close_time=k.close_time + moved,
                event_time=k.event_time + moved,
            )


def newest_second(api: ApiServer) -> int:
    """The newest 1s kline's open time the API answers (-1 while it answers none)."""
    try:
        response = httpx.get(
            f"{api.url}/api/v1/klines",
            params={"symbol": SYMBOL, "interval": "1s", "limit": 1},
            timeout=10,
        )
    except httpx.HTTPError:
        return -1
    rows = response.json() if response.status_code == 200 else []
    return int(rows[-1][0]) if rows else -1


@pytest.mark.slow
def test_replica_restarts_while_klines_stream(
    replicated: Replicated, first_flavour_only: None, history: Settings
) -> None:
    replica = replicated.replica
    stream = list(shifted(renamed(read_dump(FIRST_180), SYMBOL), COPIES))
    done = threading.Event()
    produced = 0

    def feed() -> None:
        nonlocal produced
        producer = KlineProducer(history, "test")
        while produced < len(stream) and not done.is_set():
            for kline in stream[produced : produced + BATCH]:
                producer.publish(kline)
            assert producer.flush(60) == 0 and producer.counts["failed"] == 0
            produced = min(len(stream), produced + BATCH)
            done.wait(PACE)

    lags: list[tuple[float, int]] = []  # the standby's lag as the API reports it, while up
    readings = 0

    def sample() -> None:
        nonlocal readings
        while not done.wait(SAMPLE_EVERY):
            with contextlib.suppress(httpx.HTTPError, ValueError):
                shown = status(api)
                readings += 1
                if shown["database"] == "standby":
                    lags.append((shown["replicaLagSeconds"], shown["replicaLagBytes"]))

    feeder = threading.Thread(target=feed, name="feed", daemon=True)
    sampler = threading.Thread(target=sample, name="lag", daemon=True)
    with (
        running_inserter(history),
        serve(history, TEST_CONFIG) as primary_api,
        serve(on_replica(history, replica), TEST_CONFIG) as api,
    ):
        feeder.start()
        sampler.start()
        wait_for(lambda: newest_second(api) >= 0, CAUGHT_UP, "the first klines on the standby")
        try:
            for _ in range(ROUNDS):
                for how in ("stopped", "killed -9"):
                    recover(api, primary_api, replica, how, history.db_flavour)
            note(f"{history.db_flavour}: streaming: {produced} klines produced over the rounds")
        finally:
            done.set()
            feeder.join(timeout=60)
            sampler.join(timeout=60)
        seconds = sorted(lag for lag, _ in lags)
        waiting = sorted(size for _, size in lags)
        note(
            f"{history.db_flavour}: streaming: lag over the {len(lags)} of {readings} readings of "
            "/api/v1/status that found the standby up: "
            f"median {seconds[len(seconds) // 2]:.2f} s / {waiting[len(waiting) // 2]} bytes, "
            f"max {seconds[-1]:.2f} s / {waiting[-1]} bytes"
        )
        wait_rows(history, [SYMBOL], produced)
        assert count_seconds(history) == produced
        with psycopg.connect(history.database_url) as conn:
            MinuteJob(history).run_once(conn)
        expected = answers(primary_api)
        wait_for(lambda: answers(api) == expected, CAUGHT_UP, "the standby's history")
    # The standby's own tables against the stream itself (not against the primary): every
    # produced kline exactly once, and every final bucket of every level Python's aggregation.
    standby = on_replica(history, replica).api_database_url
    written = stream[:produced]
    assert_landed_exactly(standby, written, timeout=CAUGHT_UP, levels=[])
    compared = assert_final_levels(standby, written, len(written) // 60 - 1, ("1m", "5m"))
    note(f"{history.db_flavour}: streaming: the standby holds {produced} klines, {compared}")


def recover(
    api: ApiServer, primary_api: ApiServer, replica: LocalReplica, how: str, flavour: str
) -> None:
    """Stop or kill the standby, start it, and time the API's return to everything the primary
    held when it went."""
    went = time.monotonic()
    if how == "stopped":
        replica.down()
    else:
        kill_server(replica)
    written = newest_second(primary_api)
    began = time.monotonic()
    replica.start()
    started = time.monotonic()
    wait_for(lambda: newest_second(api) >= written, CAUGHT_UP, "the API to answer again")
    answered = time.monotonic()
    note(
        f"{flavour}: streaming, {how} and started: standby up in {started - began:.2f} s, "
        f"API answering to the last second written {answered - started:.2f} s later "
        f"({answered - went:.2f} s from the {'stop' if how == 'stopped' else 'kill'})"
    )
