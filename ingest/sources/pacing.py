"""How often we may talk to an exchange: sliding-window limits and retry backoff."""

from __future__ import annotations

import asyncio
import random
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


class Backoff:
    """Exponential delays with jitter: ``initial`` doubling up to ``maximum``, each in [½d, d]."""

    def __init__(
        self,
        initial: float = 0.5,
        maximum: float = 60.0,
        rng: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self.initial = initial
        self.maximum = maximum
        self._rng = rng
        self.failures = 0

    def next_delay(self) -> float:
        """The wait before the next attempt; each call counts one more failure."""
        ceiling = min(self.maximum, self.initial * 2.0 ** min(self.failures, 32))
        self.failures += 1
        # Jitter spreads the reconnects of many clients cut off at the same moment.
        return self._rng(ceiling / 2, ceiling)

    def reset(self) -> None:
        """Forget past failures after a success."""
        self.failures = 0
