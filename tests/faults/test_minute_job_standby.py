"""Two minute jobs on one database: exactly one works (holds the lease), the other stands by;
kill -9 of the working one and the standby takes over within seconds, and every minute and every
level is still exactly Python's aggregation of the klines fed."""

from __future__ import annotations

import random
import time
from functools import partial

from cryptochart.core.database import connect
from cryptochart.ingest.minute_job_lease import lease_holder
from tests.faults.conftest import Scenario
from tests.faults.expected import past_start, sim_klines
from tests.faults.stages import Stage, Stages, assert_alive, log_shows
from tests.faults.stored import aggregated_checkpoints, assert_landed_exactly
from tests.faults.waiting import any_of, exceeds, poll_until

SYMBOLS = tuple(f"LEAS{i}USDT" for i in range(4))
SEED = 7
COUNT, SPEED = 240, 12  # 20 s of feed at 12 exchange seconds a second
KILLS = 3
WORKED = "aggregated "  # the start of the line a pass that aggregated something logs


def holder(url: str) -> str | None:
    """The application_name of the session holding the lease, as the server sees it."""
    with connect(url, timeout=5) as conn:
        return lease_holder(conn)


def holds(url: str, stage: Stage) -> bool:
    """``stage``'s process (named by its pid) holds the lease in the database."""
    name = holder(url)
    return name is not None and name.endswith(f":{stage.pid}")


def test_one_minute_job_works_and_a_standby_takes_over(scenario: Scenario, stages: Stages) -> None:
    settings = scenario(symbols=SYMBOLS)
    url = settings.database_url
    start = past_start(COUNT)
    expected = sim_klines(SYMBOLS, SEED, start, COUNT)
    inserter = stages.cli("inserter", settings, "insert")
    working = stages.cli("minute-job-a", settings, "minute-job")
    poll_until(log_shows(working, "minute job holds the lease"), 30, "the first job to work")
    standby = stages.cli("minute-job-b", settings, "minute-job")
    poll_until(log_shows(standby, "minute job standing by"), 30, "the second job to stand by")
    assert holds(url, working), holder(url)

    feed = stages.feed(settings, SYMBOLS, SEED, start, COUNT, SPEED)
    progress = partial(aggregated_checkpoints, url)
    rng = random.Random(KILLS)
    takeovers: list[float] = []
    resumes: list[float] = []
    for _ in range(KILLS):
        poll_until(
            any_of(exceeds(progress, progress()), lambda: not feed.alive),
            30,
            f"{working.name} to aggregate",
        )
        time.sleep(rng.uniform(0.05, 0.8))  # a random moment of its work
        assert WORKED not in standby.last_run_log(), "the standby aggregated while standing by"
        assert holds(url, working), holder(url)
        killed = time.monotonic()
        working.kill9()
        before = progress()
        poll_until(partial(holds, url, standby), 15, f"{standby.name} to take the lease")
        takeovers.append(time.monotonic() - killed)
        poll_until(
            any_of(exceeds(progress, before), lambda: not feed.alive),
            30,
            f"{standby.name} to aggregate after taking over",
        )
        resumes.append(time.monotonic() - killed)
        assert "minute job took over the lease" in standby.last_run_log(), standby.tail()
        # The killed job comes back, and now stands by.
        working.start()
        poll_until(log_shows(working, "standing by"), 30, f"{working.name} to stand by")
        working, standby = standby, working

    assert feed.wait(COUNT / SPEED + 60) == 0, feed.tail()
    assert_landed_exactly(url, expected)
    assert holds(url, working), holder(url)
    assert WORKED not in standby.last_run_log(), "the standby aggregated while standing by"
    assert_alive(inserter, working, standby)
    for stage in (standby, working, inserter):
        assert stage.stop() == 0, stage.tail()
    print(
        f"\nminute job takeover after kill -9 ({KILLS} kills): lease taken within "
        f"max {max(takeovers):.2f}s (mean {sum(takeovers) / KILLS:.2f}s), first aggregation "
        f"within max {max(resumes):.2f}s (mean {sum(resumes) / KILLS:.2f}s)"
    )
