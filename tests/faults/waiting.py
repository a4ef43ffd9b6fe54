"""Waiting on conditions: polled with a timeout, never slept on."""

from __future__ import annotations

import time
from collections.abc import Callable


def poll_until(
    check: Callable[[], object], timeout: float, what: str, interval: float = 0.1
) -> float:
    """Poll ``check`` until it returns something true; return the seconds it took.

    ``check`` may return a string to explain why the condition does not hold yet: the last
    explanation ends the failure message on timeout.
    """
    started = time.monotonic()
    deadline = started + timeout
    while True:
        result = check()
        if result is True or (result and not isinstance(result, str)):
            return time.monotonic() - started
        if time.monotonic() > deadline:
            why = f": {result}" if isinstance(result, str) and result else ""
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}{why}")
        time.sleep(interval)


def exceeds(measure: Callable[[], int], value: int) -> Callable[[], bool]:
    """A poll check: ``measure()`` has gone past ``value``."""
    return lambda: measure() > value


def any_of(*checks: Callable[[], object]) -> Callable[[], bool]:
    """A poll check that holds when one of ``checks`` does."""
    return lambda: any(check() is True for check in checks)
