"""Retention and compression: how long 1s klines and aggregates are kept, and (TimescaleDB) from
what age their chunks are compressed, applied per schema flavour.

Aggregates outlive the raw 1s klines, so an aggregate window is only refreshed while its raw
klines still exist (the minute job clamps windows to the raw retention): refreshing a continuous
aggregate over dropped raw chunks would delete its buckets. Compressed chunks stay writable: a
late kline lands in its compressed kline_1s chunk and a refresh rewrites compressed aggregates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import psycopg

if TYPE_CHECKING:
    from cryptochart.db.migrate import Flavour


def aggregate_relations(conn: psycopg.Connection[tuple[object, ...]]) -> list[str]:
    rows = conn.execute("SELECT 'kline_' || name FROM kline_interval ORDER BY bucket").fetchall()
    return [str(r[0]) for r in rows]


def check_retention(conn: psycopg.Connection[tuple[object, ...]], raw: str, agg: str) -> None:
    row = conn.execute("SELECT %s::interval <= %s::interval", (raw, agg)).fetchone()
    if not row or not row[0]:
        raise ValueError(
            f"CRYPTOCHART_RETENTION_AGGREGATES ({agg}) must be at least "
            f"CRYPTOCHART_RETENTION_1S ({raw})"
        )


def apply_retention(
    conn: psycopg.Connection[tuple[object, ...]], flavour: Flavour, raw: str, agg: str
) -> None:
    """Set the retention of kline_1s to ``raw`` and of every aggregate to ``agg``."""
    check_retention(conn, raw, agg)
    if flavour == "timescaledb":
        for relation, keep in [("kline_1s", raw)] + [(r, agg) for r in aggregate_relations(conn)]:
            conn.execute("SELECT remove_retention_policy(%s, if_exists => true)", (relation,))
            conn.execute(
                "SELECT add_retention_policy(%s, drop_after => %s::interval)", (relation, keep)
            )
        return
    conn.execute("DELETE FROM retention_policy")
    conn.execute("INSERT INTO retention_policy VALUES ('kline_1s', %s::interval)", (raw,))
    for relation in aggregate_relations(conn):
        conn.execute("INSERT INTO retention_policy VALUES (%s, %s::interval)", (relation, agg))
    if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_partman'").fetchone():
        conn.execute(
            "UPDATE partman.part_config SET retention = %s WHERE parent_table = 'public.kline_1s'",
            (raw,),
        )


def check_compression(conn: psycopg.Connection[tuple[object, ...]], raw: str, agg: str) -> None:
    for name, after in (("COMPRESS_AFTER", raw), ("COMPRESS_AGGREGATES_AFTER", agg)):
        try:
            row = conn.execute("SELECT %s::interval > interval '0'", (after,)).fetchone()
        except psycopg.DataError:
            row = None  # not an interval at all: the same one-line error naming the variable
        if not row or not row[0]:
            raise ValueError(f"CRYPTOCHART_{name} ({after}) must be a positive interval")


def apply_compression(
    conn: psycopg.Connection[tuple[object, ...]], flavour: Flavour, raw: str, agg: str
) -> None:
    """Have TimescaleDB's job scheduler compress kline_1s chunks older than ``raw`` and aggregate
    chunks older than ``agg``. Plain PostgreSQL has no columnstore: nothing to do."""
    check_compression(conn, raw, agg)
    if flavour != "timescaledb":
        return
    for relation, after in [("kline_1s", raw)] + [(r, agg) for r in aggregate_relations(conn)]:
        conn.execute("CALL remove_columnstore_policy(%s, if_exists => true)", (relation,))
        conn.execute("CALL add_columnstore_policy(%s, after => %s::interval)", (relation, after))
