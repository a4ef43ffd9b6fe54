"""The pieces under the live feed: per-symbol sequencing, connection limits and backoff."""

from __future__ import annotations

import time

import pytest

from cryptochart.core.backoff import Backoff
from cryptochart.core.kline import Kline
from cryptochart.ingest.sources.kline_sequencer import Gap, KlineSequencer
from cryptochart.ingest.sources.pacing import SlidingWindowLimiter
from tests.fakes.market import in_progress, kline_at

START = 1_709_251_200_000


def closed(second: int, symbol: str = "BTCUSDT") -> Kline:
    return kline_at(1, symbol, START + second * 1000)


def times(klines: list[Kline]) -> list[int]:
    return [(k.open_time - START) // 1000 for k in klines]


def test_closed_klines_pass_once_and_in_order() -> None:
    gaps: list[Gap] = []
    sequencer = KlineSequencer(1000, gaps.append)
    out = [k for s in (0, 1, 1, 2, 0, 3) for k in sequencer.accept(closed(s))]
    assert times(out) == [0, 1, 2, 3]
    assert sequencer.duplicates == 2
    assert gaps == []


def test_in_progress_updates_pass_until_their_second_closes() -> None:
    sequencer = KlineSequencer(1000, lambda gap: None)
    assert sequencer.accept(in_progress(closed(0), START + 500)) != []
    assert sequencer.accept(closed(0)) == [closed(0)]
    assert sequencer.accept(in_progress(closed(0), START + 900)) == []  # late, superseded


def test_a_hole_is_ignored_while_the_connection_stayed_up() -> None:
    gaps: list[Gap] = []
    sequencer = KlineSequencer(1000, gaps.append)
    sequencer.accept(closed(0))
    assert sequencer.accept(closed(5)) == [closed(5)]  # the exchange sent nothing in between
    assert gaps == []


def test_a_hole_after_a_connection_change_is_repaired_before_later_klines() -> None:
    gaps: list[Gap] = []
    sequencer = KlineSequencer(1000, gaps.append)
    sequencer.accept(closed(0))
    sequencer.suspect(["BTCUSDT", "ETHUSDT"])
    assert sequencer.accept(closed(4)) == []
    assert gaps == [Gap("BTCUSDT", START + 1000, START + 4000)]
    assert sequencer.accept(in_progress(closed(5), START + 5500)) == []  # held back meanwhile
    assert sequencer.accept(closed(5)) == []
    repaired = [k for s in (1, 2, 3) for k in sequencer.repaired(closed(s))]
    assert times(repaired) == [1, 2, 3]
    assert times(sequencer.repair_done("BTCUSDT")) == [4, 5]
    assert sequencer.accept(closed(5)) == []
    assert times(sequencer.accept(closed(6))) == [6]


def test_what_rest_could_not_supply_is_counted_and_the_feed_goes_on() -> None:
    gaps: list[Gap] = []
    sequencer = KlineSequencer(1000, gaps.append, resume_after={"BTCUSDT": START})
    sequencer.suspect(["BTCUSDT"])
    sequencer.accept(closed(4))
    assert gaps == [Gap("BTCUSDT", START + 1000, START + 4000)]
    sequencer.repaired(closed(1))
    assert times(sequencer.repair_done("BTCUSDT")) == [4]
    assert sequencer.gaps_left == 1


def test_a_change_during_a_repair_gets_its_own_repair() -> None:
    gaps: list[Gap] = []
    sequencer = KlineSequencer(1000, gaps.append)
    sequencer.accept(closed(0))
    sequencer.suspect(["BTCUSDT"])
    sequencer.accept(closed(3))
    sequencer.suspect(["BTCUSDT"])  # another drop while REST answers
    sequencer.accept(closed(8))
    sequencer.accept(closed(9))
    sequencer.repaired(closed(1))
    sequencer.repaired(closed(2))
    assert times(sequencer.repair_done("BTCUSDT")) == [3]
    assert gaps[-1] == Gap("BTCUSDT", START + 4000, START + 8000)
    for second in (4, 5, 6, 7):
        sequencer.repaired(closed(second))
    assert times(sequencer.repair_done("BTCUSDT")) == [8, 9]


def test_symbols_are_sequenced_independently() -> None:
    sequencer = KlineSequencer(1000, lambda gap: None)
    sequencer.accept(closed(3, "ETHUSDT"))
    assert sequencer.accept(closed(1)) == [closed(1)]
    assert sequencer.accept(closed(3, "ETHUSDT")) == []


async def test_the_limiter_spreads_acquisitions_over_its_window() -> None:
    limiter = SlidingWindowLimiter(3, 0.1)
    granted = []
    for _ in range(7):  # three now, three after 0.1 s, one after 0.2 s
        await limiter.acquire()
        granted.append(time.monotonic())
    # No window of 0.1 s ever holds a fourth acquisition (however late each one came).
    assert all(
        later - earlier >= 0.1 for earlier, later in zip(granted, granted[3:], strict=False)
    ), granted


def test_the_limiter_needs_a_positive_window() -> None:
    with pytest.raises(ValueError, match="max_events"):
        SlidingWindowLimiter(0, 1.0)


def test_backoff_doubles_with_jitter_up_to_its_cap_and_resets() -> None:
    backoff = Backoff(initial=1.0, maximum=8.0)
    ceilings = [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    for ceiling in ceilings:
        assert ceiling / 2 <= backoff.next_delay() <= ceiling
    backoff.reset()
    assert backoff.next_delay() <= 1.0
    assert len({Backoff(1.0, 8.0).next_delay() for _ in range(20)}) > 1  # jittered
