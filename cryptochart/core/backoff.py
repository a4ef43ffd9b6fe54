"""Exponential backoff with jitter: the one retry rhythm of every stage (exchange reconnects,
REST repairs, database outages)."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable


class Backoff:
    """Delays doubling from ``initial`` up to ``maximum``, each drawn from [½d, d]."""

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
        # Jitter spreads the retries of many clients cut off at the same moment.
        return self._rng(ceiling / 2, ceiling)

    def wait(self, stop: threading.Event) -> None:
        """Sleep the next delay, or less if ``stop`` is set meanwhile."""
        stop.wait(self.next_delay())

    def reset(self) -> None:
        """Forget past failures after a success."""
        self.failures = 0
