"""How long the garbage collector stops the API's event loop: every pass timed through
``gc.callbacks`` into the histogram ``cryptochart_api_gc_pause_seconds{generation}``."""

from __future__ import annotations

import gc
import time
from typing import Any

from cryptochart.api.metrics import GC_PAUSES, labelled

_started: list[int] = []


def _timed(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _started.append(time.perf_counter_ns())
    elif _started:
        elapsed = (time.perf_counter_ns() - _started.pop()) / 1e9
        labelled(GC_PAUSES, str(info["generation"])).observe(elapsed)


def watch() -> None:
    """Time every collection from now on (once; a second call changes nothing)."""
    if _timed not in gc.callbacks:
        gc.callbacks.append(_timed)
