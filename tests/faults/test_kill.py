"""kill -9 of the inserter, the producer and the minute job at random moments, each restarted at
once: every produced kline lands exactly once and every minute is aggregated exactly."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import pytest

from cryptochart.core.settings import Settings
from tests.faults.conftest import Scenario
from tests.faults.expected import (
    by_key,
    candles,
    final_minutes,
    past_start,
    sim_klines,
    unique_klines,
)
from tests.faults.stages import Stage, Stages
from tests.faults.stored import (
    aggregated_checkpoints,
    assert_landed_exactly,
    count_rows,
    matches,
    matches_where,
)
from tests.faults.topics import closed_klines_in
from tests.faults.waiting import any_of, exceeds, poll_until


@dataclass(frozen=True)
class Feed:
    """A bounded stretch of simulated past seconds, published by ``tests.faults.feed``."""

    symbols: tuple[str, ...]
    count: int  # seconds
    speed: float  # exchange seconds per wall-clock second
    seed: int = 7

    def start(self, stages: Stages, settings: Settings, start_ms: int) -> Stage:
        return stages.module(
            "feed",
            settings,
            "tests.faults.feed",
            f"--symbols={','.join(self.symbols)}",
            f"--seed={self.seed}",
            f"--start-ms={start_ms}",
            f"--count={self.count}",
            f"--speed={self.speed}",
        )

    @property
    def seconds(self) -> float:
        return self.count / self.speed


def symbols(prefix: str, n: int) -> tuple[str, ...]:
    return tuple(f"{prefix}{i}USDT" for i in range(n))


def kill_repeatedly(
    victim: Stage,
    kills: int,
    progress: Callable[[], int],
    rng: random.Random,
    feed: Stage | None = None,
    resume_timeout: float = 15.0,
) -> list[float]:
    """kill -9 ``victim`` ``kills`` times, each at a random moment after it has shown progress
    since its last start (or ``feed`` has ended: there may be nothing left to do), and start it
    again at once; return how long each start took to show progress (the first is the initial
    start)."""
    resumes = []
    feed_ended = lambda: feed is not None and not feed.alive  # noqa: E731
    for _ in range(kills):
        resumes.append(
            poll_until(
                any_of(exceeds(progress, progress()), feed_ended),
                resume_timeout,
                f"{victim.name} (start {victim.starts}) to make progress",
            )
        )
        time.sleep(rng.uniform(0.05, 0.8))  # a random moment of its work
        victim.restart()
    return resumes


def report(what: str, seconds: list[float]) -> None:
    print(
        f"\n{what}: {len(seconds)} starts showed progress within max {max(seconds):.2f}s, "
        f"mean {sum(seconds) / len(seconds):.2f}s"
    )


# --- The inserter and the minute job -----------------------------------------------------------

STAGE_NAMES = {"insert": "inserter", "aggregate": "aggregator"}


def run_stage_kills(
    scenario: Scenario, stages: Stages, command: str, kills: int, feed: Feed
) -> None:
    """kill -9 the stage of ``command`` (insert or aggregate) ``kills`` times while a feed runs,
    with the other stage running throughout."""
    settings = scenario(symbols=feed.symbols)
    url = settings.database_url
    start = past_start(feed.count)
    expected = sim_klines(feed.symbols, feed.seed, start, feed.count)

    other = "aggregate" if command == "insert" else "insert"
    stages.cli(STAGE_NAMES[other], settings, other)
    victim = stages.cli(STAGE_NAMES[command], settings, command)
    source = feed.start(stages, settings, start)
    # What shows the stage's progress since its last start: rows stored, checkpoints aggregated.
    progress: Callable[[], int] = (
        partial(count_rows, url, "kline_1s", feed.symbols)
        if command == "insert"
        else partial(aggregated_checkpoints, url)
    )
    resumes = kill_repeatedly(victim, kills, progress, random.Random(kills), source)
    assert source.wait(feed.seconds + 60) == 0, source.tail()

    assert_landed_exactly(url, expected)
    assert victim.stop() == 0, victim.tail()
    report("inserter" if command == "insert" else "minute job", resumes)


LONG = (pytest.mark.slow, pytest.mark.timeout(900))


@pytest.mark.parametrize(
    ("command", "kills", "feed"),
    [
        pytest.param("insert", 3, Feed(symbols("KINS", 6), count=100, speed=25), id="inserter-3"),
        pytest.param(
            "insert",
            20,
            Feed(symbols("KINSL", 10), count=900, speed=20),
            id="inserter-20",
            marks=LONG,
        ),
        pytest.param(
            "aggregate", 3, Feed(symbols("KAGG", 6), count=100, speed=25), id="minute-job-3"
        ),
        pytest.param(
            "aggregate",
            20,
            Feed(symbols("KAGGL", 30), count=900, speed=20),
            id="minute-job-20",
            marks=LONG,
        ),
    ],
)
def test_kill_9_mid_stream(
    scenario: Scenario, stages: Stages, command: str, kills: int, feed: Feed
) -> None:
    run_stage_kills(scenario, stages, command, kills, feed)


# --- The producer ------------------------------------------------------------------------------


def run_producer_kills(scenario: Scenario, stages: Stages, kills: int, n_symbols: int) -> None:
    """The live simulated feed of `cryptochart produce --source sim`: each start begins a new walk
    at the current second, so what was produced is what Kafka holds, read back at the end."""
    names = symbols(f"KPRD{kills}X", n_symbols)
    settings = scenario(symbols=names)
    url = settings.database_url

    def rows() -> int:
        return count_rows(url, "kline_1s", names)

    stages.cli("aggregator", settings, "aggregate")
    stages.cli("inserter", settings, "insert")
    producer = stages.cli("producer", settings, "produce", "--source=sim")
    resumes = kill_repeatedly(producer, kills, rows, random.Random(kills))
    before = rows()
    resumes.append(poll_until(exceeds(rows, before), 15, "the last producer to deliver"))
    assert producer.stop() == 0, producer.tail()

    produced = list(
        unique_klines(closed_klines_in(settings.kafka_bootstrap, settings.klines_topic))
    )
    assert producer.counts()["delivered"] >= 1
    poll_until(matches(url, "kline_1s", by_key(produced)), 60, "kline_1s = what Kafka holds")
    final = final_minutes(produced)
    poll_until(
        matches_where(url, "kline_1m", candles(produced), final),
        60,
        "kline_1m = Python's aggregation, for every final minute",
    )
    report("producer", resumes)


@pytest.mark.parametrize(
    ("kills", "n_symbols"),
    [pytest.param(3, 5, id="3"), pytest.param(20, 20, id="20", marks=LONG)],
)
def test_kill_9_producer(scenario: Scenario, stages: Stages, kills: int, n_symbols: int) -> None:
    run_producer_kills(scenario, stages, kills, n_symbols)
