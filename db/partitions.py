"""Upkeep of the plain-PostgreSQL flavour: premade daily partitions and retention.

The work is the SQL function ``kline_upkeep()`` (db/migrations/0008_stage_roles.postgres.sql):
pg_partman where the extension is installed, the same in plain SQL otherwise. It runs as the
schema's owner, so the minute job's role may call it without owning a table. On TimescaleDB its
own background jobs do this, so there is nothing to do here.
"""

from __future__ import annotations

import psycopg


def maintain(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """Premake partitions, drop expired ones, delete expired aggregate rows (plain flavour)."""
    conn.execute("SELECT kline_upkeep()")
