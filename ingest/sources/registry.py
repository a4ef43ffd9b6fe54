"""The kline sources by name, and which one to run from ``settings.source``.

Each source is one entry of ``SOURCES``: adding an exchange is adding its module and a line here.
``auto`` uses Binance when its REST API answers a ping, and otherwise the simulated feed, saying
so loudly: a chart of simulated prices must never pass for the real market.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import httpx

from cryptochart.core.settings import Settings
from cryptochart.ingest.sources.base import KlineSource
from cryptochart.ingest.sources.binance.feed import BinanceSource
from cryptochart.ingest.sources.replay import ReplaySource
from cryptochart.ingest.sources.simulated import SimulatedSource

log = logging.getLogger(__name__)

PROBE_TIMEOUT = 3.0  # seconds the auto choice waits for Binance's ping
BINANCE_LOOKBACK = 600  # seconds of closed klines repaired from REST when the producer starts


def open_source(
    settings: Settings,
    *,
    probe_timeout: float = PROBE_TIMEOUT,
    history_seconds: int | None = None,
) -> KlineSource:
    """The source ``settings`` ask for; its ``name`` says which: binance, sim or replay.

    ``history_seconds`` starts live sources that far in the past (see ``--history``).
    """
    if settings.source != "auto":
        return SOURCES[settings.source](settings, history_seconds)
    unreachable = binance_unreachable(settings.binance_rest_url, probe_timeout)
    if unreachable is None:
        log.info("source: binance (%s answers)", settings.binance_rest_url)
        return _binance(settings, history_seconds)
    log.warning(
        "SIMULATED DATA: Binance is unreachable at %s (%s); streaming SIMULATED klines "
        "(seed %d), NOT real market prices",
        settings.binance_rest_url,
        unreachable,
        settings.sim_seed,
    )
    return _simulated(settings, history_seconds)


def _binance(settings: Settings, history_seconds: int | None) -> KlineSource:
    # Without a store to ask, the producer repairs a fixed look-back; the upsert absorbs overlap.
    lookback = BINANCE_LOOKBACK if history_seconds is None else history_seconds
    since = (int(time.time()) - lookback) * 1000
    return BinanceSource.from_settings(
        settings, resume_after=dict.fromkeys(settings.symbols, since)
    )


def _simulated(settings: Settings, history_seconds: int | None) -> KlineSource:
    if not history_seconds:
        return SimulatedSource(settings.symbols, settings.sim_seed)
    start = (int(time.time()) - history_seconds) * 1000
    return SimulatedSource(settings.symbols, settings.sim_seed, start_ms=start, catch_up=True)


def _replay(settings: Settings, history_seconds: int | None) -> KlineSource:
    if not settings.replay_path:
        raise ValueError("source 'replay' needs CRYPTOCHART_REPLAY_PATH")
    return ReplaySource(settings.replay_path, speed=settings.replay_speed)


Opener = Callable[[Settings, int | None], KlineSource]
SOURCES: dict[str, Opener] = {"binance": _binance, "sim": _simulated, "replay": _replay}


def binance_unreachable(rest_url: str, timeout: float = PROBE_TIMEOUT) -> str | None:
    """Why ``<rest_url>/api/v3/ping`` failed, or None if it answered."""
    try:
        httpx.get(f"{rest_url.rstrip('/')}/api/v3/ping", timeout=timeout).raise_for_status()
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return None
