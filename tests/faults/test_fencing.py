"""A static group member fenced by the broker (another member took its group.instance.id, or the
coordinator lost track of it across a broker crash) has a fatal consumer error: the inserter
must say so and end, for its supervisor to start it again, not carry on with a dead consumer."""

from __future__ import annotations

from functools import partial

from tests.faults.conftest import Scenario
from tests.faults.expected import past_start
from tests.faults.stages import Stages, backfill, log_shows
from tests.faults.stored import assert_landed_exactly, count_rows
from tests.faults.waiting import poll_until


def test_fenced_inserter_ends_instead_of_wedging(scenario: Scenario, stages: Stages) -> None:
    settings = scenario(symbols=("FENC0USDT", "FENC1USDT"))
    url = settings.database_url
    first = stages.cli("inserter", settings, "insert")
    start = past_start(120)
    before = backfill(stages, settings, start, 60)
    assert_landed_exactly(url, before, timeout=30, levels=[])

    # A second member with the same instance id: the broker fences the first one.
    second = stages.cli("inserter-2", settings, "insert")
    poll_until(log_shows(second, "owns partitions"), 30, "the second inserter to take over")
    backlog = backfill(stages, settings, start + 60_000, 60)
    assert_landed_exactly(url, before + backlog, timeout=30, levels=[])
    poll_until(lambda: not first.alive, 15, "the fenced inserter to end")
    assert first.wait(1) != 0
    assert "fenced" in first.last_run_log().lower(), first.tail()
    rows = partial(count_rows, url, "kline_1s", settings.symbols)
    assert rows() == len(before + backlog)
    assert second.stop() == 0, second.tail()
