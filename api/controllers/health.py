"""``/health`` (the process answers) and ``/ready`` (its database and Kafka answer too)."""

from __future__ import annotations

import psycopg
from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE
from psycopg_pool import PoolTimeout

from cryptochart.api.consumer import KlineFeed
from cryptochart.api.pool import Pool
from cryptochart.api.shared import Shared

READY_TIMEOUT = 2.0


class HealthController(Controller):
    tags = ("status",)

    @get("/health", summary="The process is up")
    async def health(self) -> dict[str, str]:
        return {"status": "ok"}

    @get("/ready", summary="The database and Kafka are reachable (503 otherwise)")
    async def ready(
        self,
        pool: NamedDependency[Pool],
        feed: NamedDependency[KlineFeed],
        readiness: NamedDependency[Shared[dict[str, str]]],
    ) -> Response[dict[str, str]]:
        # Exempt from the rate limit (probes poll it), so at most one database check a second.
        checks = await readiness.get(lambda: _checks(pool, feed))
        ok = all(v == "ok" for v in checks.values())
        return Response(checks, status_code=HTTP_200_OK if ok else HTTP_503_SERVICE_UNAVAILABLE)


async def _checks(pool: Pool, feed: KlineFeed) -> dict[str, str]:
    checks = {"database": "ok", "kafka": "ok"}
    try:
        async with pool.connection(timeout=READY_TIMEOUT) as conn:
            await conn.execute("SELECT 1")
    except (psycopg.Error, PoolTimeout) as exc:
        checks["database"] = str(exc).strip().splitlines()[0] if str(exc) else "unreachable"
    if not feed.ready:
        checks["kafka"] = feed.error or "not positioned on the klines topic yet"
    return checks
