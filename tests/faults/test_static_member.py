"""The inserter as `cryptochart run` starts it is a static group member: kill -9 and a restart, and
it owns its partitions again and stores the backlog at once, long before the session timeout
after which a dynamic member's partitions would first be handed out again."""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

from cryptochart.core.settings import Settings
from cryptochart.supervisor import inserter_instance_id, stage_children
from tests.faults.conftest import Scenario
from tests.faults.expected import past_start
from tests.faults.stages import Stage, Stages, backfill
from tests.faults.stored import assert_landed_exactly
from tests.faults.waiting import poll_until

SYMBOLS = ("STAT0USDT", "STAT1USDT", "STAT2USDT")
# Far longer than the test waits: resuming within it cannot be the session timeout's doing.
SESSION_TIMEOUT = 300.0
RESUME_TIMEOUT = 60.0


def test_supervised_inserter_id_is_stable_per_host_and_data_dir(tmp_path: Path) -> None:
    here = Settings(data_dir=tmp_path / "a")
    assert inserter_instance_id(here) == inserter_instance_id(Settings(data_dir=tmp_path / "a"))
    assert inserter_instance_id(here) != inserter_instance_id(Settings(data_dir=tmp_path / "b"))
    assert inserter_instance_id(replace(here, inserter_instance_id="mine")) == "mine"
    inserter = next(c for c in stage_children(here, here.as_env({}), []) if c.name == "inserter")
    assert inserter.env["CRYPTOCHART_INSERTER_INSTANCE_ID"] == inserter_instance_id(here)


def owns_all(stage: Stage, partitions: int) -> bool:
    """The stage's current run has logged owning every partition of the klines topic."""
    return f"owns partitions {list(range(partitions))}" in stage.last_run_log()


def test_kill_9_static_inserter_resumes_at_once(scenario: Scenario, stages: Stages) -> None:
    settings = scenario(
        symbols=SYMBOLS,
        inserter_instance_id="",  # the id `cryptochart run` derives
        inserter_session_timeout_seconds=SESSION_TIMEOUT,
    )
    url = settings.database_url
    child = next(c for c in stage_children(settings, settings.as_env(), []) if c.name == "inserter")
    inserter = stages.add(
        Stage(
            "inserter",
            [sys.executable, "-m", "cryptochart.cli", *child.args],
            child.env,
            stages.log_dir,
        )
    ).start()
    partitions = settings.topic_partitions
    poll_until(lambda: owns_all(inserter, partitions), 60, "the inserter to own the partitions")
    start = past_start(180)
    before = backfill(stages, settings, start, 60)
    assert_landed_exactly(url, before, timeout=30, levels=[])

    owned_after: list[float] = []
    stored_after: list[float] = []
    klines = before
    for round_ in range(1, 3):
        inserter.kill9()
        restarted = time.monotonic()
        inserter.start()
        backlog = backfill(stages, settings, start + round_ * 60_000, 60)
        poll_until(
            lambda: owns_all(inserter, partitions),
            RESUME_TIMEOUT,
            "the restarted inserter to own its partitions again",
        )
        owned_after.append(time.monotonic() - restarted)
        klines = klines + backlog
        assert_landed_exactly(url, klines, timeout=RESUME_TIMEOUT, levels=[])
        stored_after.append(time.monotonic() - restarted)
    assert inserter.stop() == 0, inserter.tail()
    print(
        f"\nstatic inserter restarted after kill -9: owned its partitions again within "
        f"{', '.join(f'{s:.2f}s' for s in owned_after)}, stored the backlog within "
        f"{', '.join(f'{s:.2f}s' for s in stored_after)} (session timeout {SESSION_TIMEOUT:.0f}s)"
    )
