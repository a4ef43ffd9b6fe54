"""How often we may talk to an exchange: sliding-window limits (retries: core.backoff)."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable


class SlidingWindowLimiter:
    """At most ``max_events`` acquisitions in any ``period`` seconds; ``acquire`` waits its turn."""

    def __init__(
        self, max_events: int, period: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_events < 1 or period <= 0:
            raise ValueError("a limiter needs max_events >= 1 and a positive period")
        self.max_events = max_events
        self.period = period
        self._clock = clock
        self._recent: deque[float] = deque()
        self._turn = asyncio.Lock()  # first come, first served

    async def acquire(self) -> None:
        async with self._turn:
            while True:
                now = self._clock()
                while self._recent and self._recent[0] <= now - self.period:
                    self._recent.popleft()
                if len(self._recent) < self.max_events:
                    self._recent.append(now)
                    return
                await asyncio.sleep(self._recent[0] + self.period - now)
