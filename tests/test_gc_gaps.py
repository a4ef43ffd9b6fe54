"""Full garbage collections held back from the live bursts and run in the feed's gaps
(api/gc_gaps.py): when a pass may start, Python's own growth rule with the real collector, and
the collector's thresholds given back."""

from __future__ import annotations

import asyncio
import gc
import time

from cryptochart.api import gc_gaps
from cryptochart.api.gc_gaps import GapCollector, automatic_full_passes_held


class Feed:
    """When the feed's latest batch started or ended, set by hand."""

    def __init__(self, at: float) -> None:
        self.at = at

    def last_batch(self) -> float:
        return self.at


def test_a_pass_may_start_only_at_a_gaps_start_on_an_idle_feed_or_after_too_long() -> None:
    feed = Feed(at=100.0)
    collector = GapCollector(feed.last_batch)
    assert not collector.may_pause(100.01)  # amid a burst
    assert collector.may_pause(100.0 + gc_gaps.QUIET_SECONDS + 0.01)  # the gap has just begun
    assert not collector.may_pause(100.6)  # late in the gap: the next burst is near
    last_gap = 100.0 + gc_gaps.IDLE_SECONDS
    assert collector.may_pause(last_gap)  # no feed to hold back
    # A feed that never goes quiet: held back for LONGEST_WITHOUT_GAP after the last gap seen.
    for now in range(int(last_gap) + 1, int(last_gap + gc_gaps.LONGEST_WITHOUT_GAP)):
        feed.at = float(now)
        assert not collector.may_pause(now + 0.01)
    feed.at = last_gap + gc_gaps.LONGEST_WITHOUT_GAP
    assert collector.may_pause(feed.at + 0.01)


def test_holding_automatic_full_passes_nests_and_gives_the_thresholds_back() -> None:
    before = gc.get_threshold()
    with automatic_full_passes_held() as middle_passes:
        assert middle_passes == before[2]
        held = gc.get_threshold()
        assert held[:2] == before[:2] and held[2] > 1_000_000
        with automatic_full_passes_held():
            assert gc.get_threshold() == held
        assert gc.get_threshold() == held  # the outer holder still holds
    assert gc.get_threshold() == before


async def test_a_due_pass_runs_in_a_gap_and_collects_the_cycles_left_behind() -> None:
    before = gc.get_threshold()
    gc.collect()
    collector = GapCollector(lambda: time.monotonic() - 0.1)  # always just into a gap
    task = asyncio.create_task(collector.run())
    await asyncio.sleep(0)  # the collector holds the passes back and counts the old generation
    try:
        assert gc.get_threshold()[2] > 1_000_000
        full_passes = gc.get_stats()[2]["collections"]
        # Growth past a quarter of the old generation, survivors of many middle passes ...
        kept = [[i] for i in range(max(200_000, gc_gaps.oldest_generation()))]
        # ... and cycles that only a full pass frees.
        for _ in range(10_000):
            cycle: list[object] = []
            cycle.append(cycle)
        del cycle
        async with asyncio.timeout(30):
            await collector.passed.wait()
        assert gc.get_stats()[2]["collections"] > full_passes
        assert len(kept) >= 200_000
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert gc.get_threshold() == before
