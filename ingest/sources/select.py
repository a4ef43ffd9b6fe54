"""Which kline source to run, from ``settings.source``.

``auto`` uses Binance when its REST API answers a ping, and otherwise the simulated feed, saying
so loudly: a chart of simulated prices must never pass for the real market.
"""

from __future__ import annotations

import logging

import httpx

from cryptochart.settings import Settings
from ingest.sources.base import KlineSource
from ingest.sources.binance import BinanceSource
from ingest.sources.replay import ReplaySource
from ingest.sources.simulated import SimulatedSource

logger = logging.getLogger(__name__)

PROBE_TIMEOUT = 3.0  # seconds the auto choice waits for Binance's ping


def open_source(settings: Settings, *, probe_timeout: float = PROBE_TIMEOUT) -> KlineSource:
    """The source ``settings`` ask for; its ``name`` says which: binance, sim or replay."""
    if settings.source == "binance":
        return BinanceSource.from_settings(settings)
    if settings.source == "sim":
        return SimulatedSource(settings.symbols, settings.sim_seed)
    if settings.source == "replay":
        if not settings.replay_path:
            raise ValueError("source 'replay' needs CRYPTOCHART_REPLAY_PATH")
        return ReplaySource(settings.replay_path, speed=settings.replay_speed)
    unreachable = binance_unreachable(settings.binance_rest_url, probe_timeout)
    if unreachable is None:
        logger.info("source: binance (%s answers)", settings.binance_rest_url)
        return BinanceSource.from_settings(settings)
    logger.warning(
        "SIMULATED DATA: Binance is unreachable at %s (%s); streaming SIMULATED klines "
        "(seed %d), NOT real market prices",
        settings.binance_rest_url,
        unreachable,
        settings.sim_seed,
    )
    return SimulatedSource(settings.symbols, settings.sim_seed)


def binance_unreachable(rest_url: str, timeout: float = PROBE_TIMEOUT) -> str | None:
    """Why ``<rest_url>/api/v3/ping`` failed, or None if it answered."""
    try:
        httpx.get(f"{rest_url.rstrip('/')}/api/v3/ping", timeout=timeout).raise_for_status()
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return None
