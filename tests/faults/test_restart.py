"""Kafka and PostgreSQL restarted under a running pipeline: the inserter pauses, retries and has
caught up within 10 s of the service's return (an inserter that ends instead is started again
at once, as `cryptochart run` would, inside those 10 s); nothing is lost or doubled.

These scenarios restart the suite's own PostgreSQL cluster and Kafka broker (``private_services``),
never the shared ones other test runs are using.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from functools import partial

import pytest

from cryptochart.core.settings import Settings
from tests.faults.conftest import PrivateServices, Scenario
from tests.faults.expected import SECOND_MS, live_sim_klines
from tests.faults.stages import Stages, assert_alive, supervised
from tests.faults.stored import (
    assert_final_levels,
    assert_landed_exactly,
    count_rows,
    covered,
    first_second,
)
from tests.faults.waiting import exceeds, poll_until

CATCH_UP = 10.0  # seconds after a service returns by which the inserter must have caught up
# The producer starts this far in the past (generated at once, then live as one walk), so every
# run spans a minute boundary: at least one final minute per symbol to compare. The long runs
# start 5.5 minutes back, so they span a 5-minute boundary and five whole minutes too.
SHORT_HISTORY, SHORT_MINUTES = 70, 1
LONG_HISTORY, LONG_MINUTES = 330, 5


def run_live_pipeline_through(
    settings: Settings, stages: Stages, outages: list[Callable[[], None]]
) -> list[float]:
    """Producer (live simulated feed), inserter and minute job running while each of ``outages``
    takes a service away and brings it back; returns each catch-up time (seconds)."""
    url, names = settings.database_url, settings.symbols
    rows = partial(count_rows, url, "kline_1s", names)
    long = len(outages) > 1
    history = LONG_HISTORY if long else SHORT_HISTORY
    aggregator = stages.cli("aggregator", settings, "aggregate")
    inserter = stages.cli("inserter", settings, "insert")
    producer = stages.cli("producer", settings, "produce", "--source=sim", f"--history={history}")
    poll_until(lambda: first_second(url, names), 30, "the first klines of every symbol")
    first = first_second(url, names)
    assert first is not None

    catch_ups = []
    for outage in outages:
        before = rows()
        poll_until(exceeds(rows, before), 15, "klines flowing")
        outage()
        back = time.time()
        # Everything the producer had emitted when the service returned (second S goes out
        # just after S + 1 s), stored within CATCH_UP seconds.
        through = int(back) * SECOND_MS - 2 * SECOND_MS
        caught_up = partial(covered, url, names, first, through)
        catch_ups.append(
            poll_until(
                supervised(inserter, caught_up),
                CATCH_UP,
                "the inserter to catch up after the service returned",
                interval=0.05,
            )
        )

    poll_until(exceeds(rows, rows()), 15, "klines flowing at the end")
    assert producer.stop() == 0, producer.tail()
    counts = producer.counts()
    assert counts["delivered"] == counts["closed"] and counts.get("failed", 0) == 0, counts

    expected = live_sim_klines(names, settings.sim_seed, first, counts["closed"])
    assert_landed_exactly(url, expected, levels=[])
    compared = assert_final_levels(
        url,
        expected,
        LONG_MINUTES if long else SHORT_MINUTES,
        ("1m", "5m") if long else ("1m",),
    )
    print(f"\nfinal candles compared: {compared}")
    assert_alive(aggregator, inserter)
    assert inserter.stop() == 0, inserter.tail()
    assert aggregator.stop() == 0, aggregator.tail()
    assert producer.starts == 1, "the producer rode the outages out"
    if inserter.starts > 1:
        print(f"\nthe inserter ended and was started again {inserter.starts - 1} times")
    return catch_ups


def report(what: str, catch_ups: list[float]) -> None:
    print(f"\n{what}: caught up in " + ", ".join(f"{s:.2f}s" for s in catch_ups))


# --- Kafka -------------------------------------------------------------------------------------


def kafka_restart(
    services: PrivateServices, outage: float, kill: bool = False
) -> Callable[[], None]:
    def restart() -> None:
        pid = services.kafka.pid()
        if kill and pid is not None:
            os.kill(pid, signal.SIGKILL)
            poll_until(lambda: services.kafka.pid() is None, 10, "Kafka to die")
        else:
            services.kafka.down()
        time.sleep(outage)  # the outage itself
        services.kafka.up()

    return restart


def kafka_scenario(scenario: Scenario, services: PrivateServices, prefix: str) -> Settings:
    names = tuple(f"{prefix}{i}USDT" for i in range(4))
    return scenario(kafka_bootstrap=services.settings.kafka_bootstrap, symbols=names, sim_seed=3)


LONG = (pytest.mark.slow, pytest.mark.timeout(900))


@pytest.mark.parametrize(
    "outages",  # (seconds down, killed with -9 rather than stopped)
    [
        pytest.param([(1.0, False)], id="once"),
        pytest.param(
            [(2.0, False), (15.0, False), (2.0, True), (30.0, True)], id="4-times", marks=LONG
        ),
    ],
)
def test_kafka_restart_mid_stream(
    scenario: Scenario,
    stages: Stages,
    private_services: PrivateServices,
    outages: list[tuple[float, bool]],
) -> None:
    settings = kafka_scenario(scenario, private_services, f"RKAF{len(outages)}X")
    restarts = [kafka_restart(private_services, s, kill=k) for s, k in outages]
    report("kafka restarts", run_live_pipeline_through(settings, stages, restarts))


# --- PostgreSQL --------------------------------------------------------------------------------


def postgres_restart(services: PrivateServices, outage: float) -> Callable[[], None]:
    def restart() -> None:
        services.postgres.down()
        time.sleep(outage)  # the outage itself
        services.postgres.up()

    return restart


def postgres_scenario(scenario: Scenario, services: PrivateServices, prefix: str) -> Settings:
    names = tuple(f"{prefix}{i}USDT" for i in range(4))
    url = services.database(f"faults_{prefix.lower()}")
    return scenario(database_url=url, symbols=names, sim_seed=4)


@pytest.mark.parametrize(
    "outages",  # seconds down
    [
        pytest.param([1.0], id="once"),
        pytest.param([1.0, 5.0, 15.0, 30.0], id="4-times", marks=LONG),
    ],
)
def test_postgres_restart_mid_stream(
    scenario: Scenario, stages: Stages, private_services: PrivateServices, outages: list[float]
) -> None:
    settings = postgres_scenario(scenario, private_services, f"RPG{len(outages)}X")
    restarts = [postgres_restart(private_services, s) for s in outages]
    report("postgres restarts", run_live_pipeline_through(settings, stages, restarts))
