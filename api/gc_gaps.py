"""Full garbage collections moved into the live feed's quiet gaps.

A full pass walks every object the collector tracks, and the API's heap grows with its
WebSocket clients: ~140 objects each, so ~700,000 and a 470 ms pass at 5,000 clients (B2), the
event loop stopped throughout. Python starts one whenever the oldest generation has grown by a
quarter since the last, wherever the loop is: often amid a second's burst of frames, which then
all arrive half a second late. Here those automatic full passes are held back, and the same rule
(ten passes of the middle generation, then a quarter's growth) is checked only at the start of a
gap in the feed (the quiet after a second's burst), and the pass runs there. A feed with no gap for
``LONGEST_WITHOUT_GAP`` seconds gets its due pass anyway, so memory stays bounded as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Callable, Iterator

log = logging.getLogger(__name__)

QUIET_SECONDS = 0.05  # no batch from the feed for this long: the burst is over
GAP_START_SECONDS = 0.15  # how far into a gap a pass may still start
IDLE_SECONDS = 2.0  # no batch for this long: the feed has no rhythm to keep
CHECK_SECONDS = 0.05
COUNT_EVERY_SECONDS = 5.0  # the oldest generation's size is counted at most this often
GROWTH = 0.25  # Python's own rule for a full pass
LONGEST_WITHOUT_GAP = 30.0
_HELD_BACK = 1 << 30  # a threshold the middle generation's passes never reach

_holders = 0
_saved = (700, 10, 10)


@contextlib.contextmanager
def automatic_full_passes_held() -> Iterator[int]:
    """Automatic full passes off while inside (nested holders share it); yields the threshold
    of middle-generation passes that Python would wait for."""
    global _holders, _saved
    if _holders == 0:
        _saved = gc.get_threshold()
        gc.set_threshold(_saved[0], _saved[1], _HELD_BACK)
    _holders += 1
    try:
        yield _saved[2]
    finally:
        _holders -= 1
        if _holders == 0:
            gc.set_threshold(*_saved)


def oldest_generation() -> int:
    return len(gc.get_objects(generation=2))


class GapCollector:
    """Runs the full passes Python would run, in the gaps of the feed whose last batch started
    or ended at ``last_batch()`` (``time.monotonic``)."""

    def __init__(self, last_batch: Callable[[], float]) -> None:
        self._last_batch = last_batch
        self._quiet_seen = time.monotonic()
        self.passed = asyncio.Event()  # set by each full pass run here

    def may_pause(self, now: float) -> bool:
        """Whether a pass started now holds no frame back: right at the start of a gap (the
        next second's burst is most of a second away), on a feed idle for seconds, or on one
        that has had no gap for ``LONGEST_WITHOUT_GAP`` (the pass cannot wait for ever)."""
        quiet_for = now - self._last_batch()
        if quiet_for < QUIET_SECONDS:
            return now - self._quiet_seen >= LONGEST_WITHOUT_GAP
        self._quiet_seen = now
        return quiet_for < QUIET_SECONDS + GAP_START_SECONDS or quiet_for >= IDLE_SECONDS

    async def run(self) -> None:
        with automatic_full_passes_held() as middle_passes:
            after_last = oldest_generation()
            next_count = time.monotonic()
            while True:
                await asyncio.sleep(CHECK_SECONDS)
                now = time.monotonic()
                if not self.may_pause(now):
                    continue
                if gc.get_count()[2] < middle_passes or now < next_count:
                    continue
                next_count = now + COUNT_EVERY_SECONDS
                if oldest_generation() - after_last > after_last * GROWTH:
                    gc.collect(2)  # timed, like every pass, by api/gc_pauses.py
                    log.debug("full collection in a gap")
                    self.passed.set()
                    after_last = oldest_generation()
