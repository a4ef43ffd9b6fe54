"""The read-only PostgreSQL pool every request borrows a connection from."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from psycopg import IsolationLevel
from psycopg_pool import AsyncConnectionPool

from cryptochart.api.config import ApiConfig
from cryptochart.core.database import AsyncConn

Pool = AsyncConnectionPool[AsyncConn]
# How long the pool retries a lost connection (its waits double from 1 s) before leaving it to
# the next request, which tries at once: the API is back within about this long of its database.
RECONNECT_SECONDS = 1.0


async def _configure(conn: AsyncConn) -> None:
    # One snapshot per request: the levels of a candle tail are read consistently.
    await conn.set_isolation_level(IsolationLevel.REPEATABLE_READ)
    await conn.set_read_only(True)


def create_pool(dsn: str, config: ApiConfig) -> Pool:
    """A closed pool on ``dsn``; ``await pool.open()`` it in the lifespan."""
    timeout_ms = int(config.query_timeout * 1000)
    return AsyncConnectionPool(
        dsn,
        min_size=config.pool_min_size,
        max_size=config.pool_max_size,
        timeout=config.query_timeout,
        open=False,
        configure=_configure,
        reconnect_timeout=RECONNECT_SECONDS,
        kwargs={"options": f"-c statement_timeout={timeout_ms}", "connect_timeout": 5},
        name="cryptochart-api",
    )


@asynccontextmanager
async def standalone(pool: Pool) -> AsyncIterator[AsyncConn]:
    """A pooled connection in autocommit, for reads whose statements each stand alone (none
    needs the snapshot of another): one round trip a statement, no BEGIN and COMMIT around."""
    async with pool.connection() as conn:
        await conn.set_autocommit(True)
        try:
            yield conn
        finally:
            await conn.set_autocommit(False)
