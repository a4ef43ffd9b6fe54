"""kill -9 of the inserter, the producer and the minute job at random moments, each restarted at
once: every produced kline lands exactly once and every minute is aggregated exactly.

The producer's klines are checked against the simulated source's own sequence, worked out here,
not against what reached Kafka: a kline lost before Kafka is a missing second."""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import pytest

from cryptochart.core.database import connect
from cryptochart.core.kline import Kline
from cryptochart.core.settings import Settings
from tests.faults.conftest import Scenario
from tests.faults.expected import (
    SECOND_MS,
    Key,
    Row,
    by_key,
    live_sim_klines,
    past_start,
    sim_klines,
)
from tests.faults.stages import Stage, Stages, assert_alive
from tests.faults.stored import (
    aggregated_checkpoints,
    assert_final_levels,
    assert_landed_exactly,
    count_rows,
    difference,
    stored,
)
from tests.faults.waiting import any_of, exceeds, poll_until


@dataclass(frozen=True)
class Feed:
    """A bounded stretch of simulated past seconds, published by ``tests.faults.feed``."""

    symbols: tuple[str, ...]
    count: int  # seconds
    speed: float  # exchange seconds per wall-clock second
    seed: int = 7

    def start(self, stages: Stages, settings: Settings, start_ms: int) -> Stage:
        return stages.feed(settings, self.symbols, self.seed, start_ms, self.count, self.speed)

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
    killed_at: list[float] | None = None,
) -> list[float]:
    """kill -9 ``victim`` ``kills`` times, each at a random moment after it has shown progress
    since its last start (or ``feed`` has ended: there may be nothing left to do), and start it
    again at once; return how long each start took to show progress (the first is the initial
    start). Each kill's wall-clock time is appended to ``killed_at``."""
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
        if killed_at is not None:
            killed_at.append(time.time())
        victim.restart()
    return resumes


def report(what: str, seconds: list[float]) -> None:
    print(
        f"\n{what}: {len(seconds)} starts showed progress within max {max(seconds):.2f}s, "
        f"mean {sum(seconds) / len(seconds):.2f}s"
    )


# --- The inserter and the minute job -----------------------------------------------------------

STAGE_NAMES = {"insert": "inserter", "aggregate": "aggregator"}
# What a stage logs once it is up: a SIGTERM before its handler is in place would kill it.
STAGE_UP = {"insert": "inserter consuming", "aggregate": "minute job holds the lease"}


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
    other_stage = stages.cli(STAGE_NAMES[other], settings, other)
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
    poll_until(
        lambda: STAGE_UP[command] in victim.last_run_log(), 30, f"{victim.name}'s last start up"
    )
    assert_alive(victim, other_stage)
    assert victim.stop() == 0, victim.tail()
    assert other_stage.stop() == 0, other_stage.tail()
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


@dataclass(frozen=True)
class ProducerKills:
    """``kills`` of `cryptochart produce --source sim` over ``n_symbols``; its first start
    generates ``history`` seconds at once (so the run spans whole minutes, and 5-minute buckets
    when long enough), the later ones start a new walk at the current second."""

    kills: int
    n_symbols: int
    history: int
    min_minutes: int  # final minutes every symbol must have, compared exactly
    levels: tuple[str, ...]  # levels that must have a final bucket to compare


def rows_since(url: str, names: tuple[str, ...], since_ms: int) -> int:
    with connect(url, timeout=5) as conn:
        row = conn.execute(
            "SELECT count(*) FROM kline_1s WHERE symbol = ANY(%s) "
            "AND open_time >= timestamptz 'epoch' + %s * interval '1 ms'",
            (list(names), since_ms),
        ).fetchone()
    return int(str(row[0])) if row else 0


def source_runs(
    actual: dict[Key, Row], names: tuple[str, ...], seed: int, killed_at: list[float], closed: int
) -> tuple[list[Kline], set[Key]]:
    """What each start of the producer generated, from the source itself: start i begins a walk
    of ``seed`` at its first second and is killed at ``killed_at[i]``, so its seconds lie in
    [floor(previous kill), floor(its kill)) (second S goes out after S + 1 s, and the next start
    begins at the current second). A killed start's walk is worked out up to the newest second
    stored of it; the last start stopped cleanly after ``closed`` klines. Returns the klines and
    the keys a kill -9 may have cut (the newest second of each killed start: its klines leave in
    several requests, one per partition)."""
    bounds = [0, *(int(at) * SECOND_MS for at in killed_at), 2**62]
    expected: list[Kline] = []
    may_be_cut: set[Key] = set()
    for run, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        seconds = sorted({open_ms for _, open_ms in actual if lo <= open_ms < hi})
        assert seconds, f"start {run + 1} of the producer stored nothing in [{lo}, {hi})"
        first = seconds[0]
        if run < len(killed_at):
            count = (seconds[-1] - first) // SECOND_MS + 1
            expected += sim_klines(names, seed, first, count)
            may_be_cut |= {(name, seconds[-1]) for name in names}
        else:
            expected += live_sim_klines(names, seed, first, closed)
    return expected, may_be_cut


def run_producer_kills(scenario: Scenario, stages: Stages, case: ProducerKills) -> None:
    names = symbols(f"KPRD{case.kills}X", case.n_symbols)
    settings = scenario(symbols=names)
    url = settings.database_url
    killed_at: list[float] = []

    def rows() -> int:  # stored by the current start
        return rows_since(url, names, int(killed_at[-1]) * SECOND_MS if killed_at else 0)

    aggregator = stages.cli("aggregator", settings, "aggregate")
    inserter = stages.cli("inserter", settings, "insert")
    history = f"--history={case.history}"
    producer = stages.cli("producer", settings, "produce", "--source=sim", history)
    producer.argv.remove(history)  # started again, it goes on live from the current second
    resumes = kill_repeatedly(
        producer, case.kills, rows, random.Random(case.kills), killed_at=killed_at
    )
    before = rows()
    resumes.append(poll_until(exceeds(rows, before), 15, "the last producer to deliver"))
    assert producer.stop() == 0, producer.tail()
    counts = producer.counts()
    assert counts["delivered"] == counts["closed"] and counts.get("failed", 0) == 0, counts

    # Wait until the last start's klines are all stored, then compare with the source's own.
    last_start = int(killed_at[-1]) * SECOND_MS
    poll_until(
        lambda: rows_since(url, names, last_start) >= counts["closed"],
        60,
        "the last start's klines stored",
    )
    actual = stored(url, "kline_1s", names)
    expected, may_be_cut = source_runs(
        actual, names, settings.sim_seed, killed_at, counts["closed"]
    )
    present = {
        key: row for key, row in by_key(expected).items() if key in actual or key not in may_be_cut
    }
    assert (diff := difference(present, actual)) == "", f"kline_1s against the source: {diff}"
    landed = [k for k in expected if (k.symbol, k.open_time) in actual]
    compared = assert_final_levels(url, landed, case.min_minutes, case.levels)
    assert_alive(aggregator, inserter)
    assert inserter.stop() == 0, inserter.tail()
    assert aggregator.stop() == 0, aggregator.tail()
    cut = len(by_key(expected)) - len(landed)
    print(f"\n{len(landed)} klines as the source made them ({cut} cut by a kill), {compared}")
    report("producer", resumes)


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(ProducerKills(3, 5, history=70, min_minutes=1, levels=("1m",)), id="3"),
        pytest.param(
            ProducerKills(20, 20, history=330, min_minutes=5, levels=("1m", "5m")),
            id="20",
            marks=LONG,
        ),
    ],
)
def test_kill_9_producer(scenario: Scenario, stages: Stages, case: ProducerKills) -> None:
    run_producer_kills(scenario, stages, case)
