"""The missing-seconds gauge: one query for every configured symbol, at most once per
``CRYPTOCHART_API_GAPS_METRIC_SECONDS``, however often ``/metrics`` is scraped."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import psycopg
from psycopg_pool import PoolTimeout

from cryptochart.api.metrics import MISSING_SECONDS
from cryptochart.api.pool import Pool
from cryptochart.db.gaps import missing_last_hour

log = logging.getLogger(__name__)


async def measure_missing_seconds(pool: Pool, symbols: Sequence[str], retention: str) -> None:
    """Set the gauge of each symbol to its missing seconds in the last whole hour."""
    async with pool.connection() as conn:
        missing = await missing_last_hour(conn, list(symbols), retention)
    for symbol, seconds in missing.items():
        MISSING_SECONDS.labels(symbol=symbol).set(seconds)


async def watch_missing_seconds(
    pool: Pool, symbols: Sequence[str], retention: str, every: float
) -> None:
    """Keep the gauge current until cancelled; an unreachable database skips a round."""
    failing = False
    while True:
        try:
            await measure_missing_seconds(pool, symbols, retention)
            failing = False
        except (psycopg.Error, PoolTimeout) as exc:
            if not failing:  # one line when it starts failing, not one per round
                log.warning("missing-seconds gauge not updated: %s", " ".join(str(exc).split()))
            failing = True
        await asyncio.sleep(every)
