"""Upkeep of the plain-PostgreSQL flavour: premade daily partitions and retention.

pg_partman does it where the extension is installed; otherwise the same in plain SQL. On
TimescaleDB its own background jobs do this, so there is nothing to do here.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import psycopg
from psycopg import sql

PREMAKE_DAYS = 4


def maintain(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """Premake partitions, drop expired ones, delete expired aggregate rows (plain flavour)."""
    if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_partman'").fetchone():
        conn.execute("SELECT partman.run_maintenance(p_parent_table => 'public.kline_1s')")
    else:
        _premake(conn, datetime.now(UTC).date())
        _drop_expired(conn)
    for relation, keep in conn.execute(
        "SELECT relation, keep FROM retention_policy WHERE relation <> 'kline_1s'"
    ).fetchall():
        conn.execute(
            sql.SQL("DELETE FROM {} WHERE open_time < now() - %s").format(
                sql.Identifier(str(relation))
            ),
            (keep,),
        )


def _partition_name(day: date) -> str:
    return f"kline_1s_p{day:%Y%m%d}"


def _premake(conn: psycopg.Connection[tuple[object, ...]], today: date) -> None:
    for offset in range(-1, PREMAKE_DAYS + 1):
        day = today + timedelta(days=offset)
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} PARTITION OF kline_1s FOR VALUES FROM ({}) TO ({})"
            ).format(
                sql.Identifier(_partition_name(day)),
                sql.Literal(f"{day.isoformat()} 00:00:00+00"),
                sql.Literal(f"{(day + timedelta(days=1)).isoformat()} 00:00:00+00"),
            )
        )


def _drop_expired(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    rows = conn.execute(
        """SELECT c.relname
           FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
           WHERE i.inhparent = 'kline_1s'::regclass
             AND c.relname ~ '^kline_1s_p[0-9]{8}$'
             AND to_date(substr(c.relname, 11), 'YYYYMMDD') + 1
                 < (now() - (SELECT keep FROM retention_policy WHERE relation = 'kline_1s'))::date
        """
    ).fetchall()
    for (name,) in rows:
        conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(str(name))))
