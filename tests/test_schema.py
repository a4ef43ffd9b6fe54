"""The schema on the local PostgreSQL: migrations, columns, roles, retention upkeep."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest

from cryptochart.core.database import Conn, with_dbname
from cryptochart.core.settings import Settings
from cryptochart.db.migrate import Flavour, discover, migrate
from cryptochart.db.partitions import maintain
from tests.conftest import skip_unless

KLINE_COLUMNS = {
    "symbol": "text",
    "open_time": "timestamp with time zone",
    "close_time": "timestamp with time zone",
    "open": "numeric",
    "high": "numeric",
    "low": "numeric",
    "close": "numeric",
    "volume": "numeric",
    "quote_volume": "numeric",
    "trades": "bigint",
    "taker_buy_base_volume": "numeric",
    "taker_buy_quote_volume": "numeric",
}
AGGREGATES = ["kline_1m", "kline_5m", "kline_15m", "kline_1h", "kline_1d"]


def columns(conn: Conn, relation: str) -> dict[str, str]:
    rows = conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'public' AND table_name = %s ORDER BY ordinal_position",
        (relation,),
    ).fetchall()
    return {str(name): str(kind) for name, kind in rows}


def test_migrations_apply_twice(database_factory: Callable[[str], str], flavour: Flavour) -> None:
    url = database_factory(f"twice_{flavour}")
    with psycopg.connect(url) as conn:
        first = migrate(conn, "7 days", "400 days", flavour)
        second = migrate(conn, "7 days", "400 days")
        recorded = conn.execute("SELECT count(*) FROM schema_migrations").fetchone()
    expected = discover(flavour)
    assert first.flavour == second.flavour == flavour  # recorded once, kept
    assert first.applied == [f"{m.version}_{m.name}" for m in expected]
    assert {m.flavour for m in expected} == {None, flavour}
    assert second.applied == []
    assert recorded == (len(expected),)


def test_documented_columns(db: Conn) -> None:
    assert columns(db, "kline_1s") == KLINE_COLUMNS
    for relation in AGGREGATES:
        assert columns(db, relation) == {**KLINE_COLUMNS, "seconds": "integer"}
    pk = db.execute(
        "SELECT array_agg(a.attname ORDER BY k.ord) FROM pg_index i "
        "CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) "
        "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
        "WHERE i.indrelid = 'kline_1s'::regclass AND i.indisprimary"
    ).fetchone()
    assert pk == (["symbol", "open_time"],)
    assert set(columns(db, "ingest_checkpoint")) >= {
        "symbol",
        "first_open_time",
        "last_open_time",
        "rows",
        "created_at",
        "aggregated_at",
    }


def test_kline_1s_is_partitioned_by_day_with_partman(db: Conn, flavour: Flavour) -> None:
    skip_unless(flavour, "postgres")
    today = db.execute(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'kline_1s'::regclass"
    ).fetchone()
    assert today is not None and int(str(today[0])) >= 5  # days ahead, plus the default partition
    config = db.execute(
        "SELECT partition_interval, retention FROM partman.part_config "
        "WHERE parent_table = 'public.kline_1s'"
    ).fetchone()
    assert config == ("1 day", "7 days")


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO kline_1s VALUES ('X', now(), now(), 1, 1, 1, 1, 0, 0, 0, 0, 0)",
        "DELETE FROM kline_1m",
        "SELECT * FROM ingest_checkpoint",
        "SELECT * FROM schema_migrations",
        "CREATE TABLE mine (x int)",
    ],
)
def test_analyst_cannot_write_or_read_internals(settings: Settings, statement: str) -> None:
    url = with_dbname(settings.database_url, _dbname(settings), user="cryptochart_analyst")
    with psycopg.connect(url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(statement)


def test_analyst_reads_documented_views(settings: Settings, db: Conn) -> None:
    db.execute(
        "INSERT INTO kline_1s VALUES ('ANALYSTUSDT', now(), now(), 1.5, 2, 1, 1.75, 3, 4, 5, 1, 2)"
    )
    url = with_dbname(settings.database_url, _dbname(settings), user="cryptochart_analyst")
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT open, close FROM kline_1s WHERE symbol = 'ANALYSTUSDT'"
        ).fetchone()
        for relation in AGGREGATES:
            conn.execute(f"SELECT count(*) FROM {relation}")
    assert row is not None and str(row[0]) == "1.5" and str(row[1]) == "1.75"


def test_upkeep_deletes_expired_aggregate_rows(db: Conn, flavour: Flavour) -> None:
    skip_unless(flavour, "postgres")  # TimescaleDB's own retention jobs: test_timescaledb.py
    db.execute(
        "INSERT INTO kline_1m VALUES "
        "('OLDUSDT', now() - interval '401 days', now(), 1, 1, 1, 1, 0, 0, 0, 0, 0, 60),"
        "('OLDUSDT', now() - interval '1 day', now(), 1, 1, 1, 1, 0, 0, 0, 0, 0, 60)"
    )
    maintain(db)
    left = db.execute("SELECT count(*) FROM kline_1m WHERE symbol = 'OLDUSDT'").fetchone()
    assert left == (1,)


def _dbname(settings: Settings) -> str:
    from psycopg.conninfo import conninfo_to_dict

    return str(conninfo_to_dict(settings.database_url)["dbname"])


def test_partitions_without_pg_partman(database_factory: Callable[[str], str]) -> None:
    """Where pg_partman is absent, plain SQL premakes daily partitions and drops expired ones."""
    url = database_factory("nopartman")
    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn, "7 days", "400 days", "postgres", use_partman=False)
        assert (
            conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_partman'").fetchone()
            is None
        )
        conn.execute(
            "CREATE TABLE kline_1s_p20200101 PARTITION OF kline_1s "
            "FOR VALUES FROM ('2020-01-01 00:00+00') TO ('2020-01-02 00:00+00')"
        )
        with conn.transaction():
            maintain(conn)
        partitions = {
            str(name)
            for (name,) in conn.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'kline_1s'::regclass"
            ).fetchall()
        }
        today = conn.execute("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDD')").fetchone()
        ahead = conn.execute(
            "SELECT to_char((now() + interval '4 days') AT TIME ZONE 'UTC', 'YYYYMMDD')"
        ).fetchone()
        conn.execute("INSERT INTO kline_1s VALUES ('P', now(), now(), 1, 1, 1, 1, 0, 0, 0, 0, 0)")
        located = conn.execute(
            "SELECT tableoid::regclass::text FROM kline_1s WHERE symbol = 'P'"
        ).fetchone()
    assert today is not None and ahead is not None
    assert {"kline_1s_default", f"kline_1s_p{today[0]}", f"kline_1s_p{ahead[0]}"} <= partitions
    assert "kline_1s_p20200101" not in partitions  # older than the 7-day retention: dropped
    assert located == (f"kline_1s_p{today[0]}",)
