"""Whether the API reads from a primary or a hot standby, and how far the standby lags.

The API may read history from a streaming replica (``CRYPTOCHART_API_DATABASE_URL``); its answers
are then as old as the replica's last replayed transaction. ``/api/v1/status`` and ``/metrics``
say so: on a primary the lag is 0 (both functions answer NULL there); on a standby it is the WAL
received but not replayed yet (bytes), and the time since the last replayed commit while any is
waiting (0 once everything received is replayed, so an idle primary does not read as lag; a
standby that has just started streams again from the start of a WAL segment, behind what it has
replayed, which is no lag either).
"""

from __future__ import annotations

import asyncio
import logging

import msgspec
import psycopg
from psycopg_pool import PoolTimeout

from cryptochart.api.metrics import REPLICA_LAG_BYTES, REPLICA_LAG_SECONDS, STANDBY
from cryptochart.api.pool import Pool
from cryptochart.api.shared import Shared

REPLICATION_SECONDS = 1.0  # the database's role and lag are read at most this often
CONNECT_SECONDS = 2.0  # an unreachable database is reported after this long
log = logging.getLogger(__name__)

QUERY = """
SELECT pg_is_in_recovery(),
       CASE WHEN pg_last_wal_receive_lsn() > pg_last_wal_replay_lsn()
            THEN extract(epoch FROM now() - pg_last_xact_replay_timestamp())
            ELSE 0
       END::float8,
       greatest(0, pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()))::bigint
"""


class Replication(msgspec.Struct, frozen=True):
    role: str  # primary, standby, or unreachable (then the lags are unknown: None)
    lag_seconds: float | None
    lag_bytes: int | None


UNREACHABLE = Replication("unreachable", None, None)


async def read_replication(pool: Pool) -> Replication:
    """The role and lag of the database behind ``pool``; unreachable when it does not answer."""
    try:
        async with pool.connection(timeout=CONNECT_SECONDS) as conn:
            cur = await conn.execute(QUERY)
            row = await cur.fetchone()
    except (psycopg.Error, PoolTimeout):
        return UNREACHABLE
    if row is None:
        return UNREACHABLE
    standby, seconds, lag_bytes = row
    return Replication(
        "standby" if standby else "primary",
        max(0.0, float(seconds or 0)),
        int(lag_bytes or 0),
    )


def replication_state() -> Shared[Replication]:
    """The one reading ``/api/v1/status`` and the gauges share."""
    return Shared[Replication](REPLICATION_SECONDS)


async def watch_replication(pool: Pool, state: Shared[Replication]) -> None:
    """Keep the gauges current until cancelled (a gauge is NaN while its value is unknown)."""
    last_role = ""
    while True:
        replication = await state.get(lambda: read_replication(pool))
        if replication.role != last_role:  # one line per change, not one per reading
            log.info("the API's database is %s", replication.role)
            last_role = replication.role
        STANDBY.set({"standby": 1.0, "primary": 0.0}.get(replication.role, float("nan")))
        REPLICA_LAG_SECONDS.set(_known(replication.lag_seconds))
        REPLICA_LAG_BYTES.set(_known(replication.lag_bytes))
        await asyncio.sleep(REPLICATION_SECONDS)


def _known(value: float | None) -> float:
    return float("nan") if value is None else float(value)
