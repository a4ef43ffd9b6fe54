"""One computation shared by every caller for a short while: an endpoint whose answer costs
database work (``/ready``, every symbol's ticker) computes it at most once per ``ttl`` seconds,
however often it is asked, and concurrent callers wait for the same computation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Shared(Generic[T]):
    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._lock = asyncio.Lock()
        self._value: T | None = None
        self._at = float("-inf")

    async def get(self, compute: Callable[[], Awaitable[T]]) -> T:
        async with self._lock:
            if self._value is None or self._clock() - self._at >= self.ttl:
                self._value = await compute()
                self._at = self._clock()
            return self._value
