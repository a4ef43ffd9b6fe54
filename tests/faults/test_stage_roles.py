"""Least privilege of the pipeline's stages: the inserter's role (cryptochart_app) writes kline_1s
and widens the checkpoints, the minute job's role (cryptochart_minute_job) refreshes the
aggregates and marks the checkpoints, and neither can do anything else: no other reads or
writes, no DDL. Checked from the catalogue and by trying, as each role, what it must not do;
then the stages, started as commands, are seen connected as exactly these roles.

On TimescaleDB the aggregates belong to the NOLOGIN role cryptochart_aggregates (only an owner
may refresh them) of which the minute job is a member; an event trigger refuses it every DDL
command, so what it inherits refreshes and changes no definition. Not refused: what TimescaleDB
does itself before PostgreSQL's DDL hooks or in its functions, for the aggregates' owner (an index
on an aggregate, its timescaledb.* options, its policies, jobs and chunks): TimescaleDB lets only
the owner refresh. The readers' limits are in test_roles.py."""

from __future__ import annotations

from collections.abc import Iterator

import msgspec
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from cryptochart.core.database import Conn
from cryptochart.core.settings import Settings
from cryptochart.ingest.inserter import staging_rows, write_batch
from cryptochart.ingest.minute_job import MinuteJob
from cryptochart.supervisor import stage_children
from tests.faults.conftest import Scenario
from tests.faults.expected import past_start, sim_klines
from tests.faults.test_roles import granted, timescaledb_readable
from tests.pipeline import produce, wait_for

SYMBOL = "STAGE0USDT"
REFUSED = (
    psycopg.errors.InsufficientPrivilege,
    psycopg.errors.UndefinedTable,  # the schema is not even visible
    psycopg.errors.UndefinedFunction,  # the other flavour's function
)


@pytest.fixture
def stage_db(scenario: Scenario) -> Iterator[tuple[Settings, Conn]]:
    """Settings of a migrated database of the test's own, and the owner's connection to it."""
    settings: Settings = scenario(symbols=(SYMBOL,))
    with psycopg.connect(settings.database_url, autocommit=True) as owner:
        yield settings, owner


def is_timescaledb(owner: Conn) -> bool:
    return (
        owner.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
        is not None
    )


def refused(conn: Conn, statements: list[str]) -> list[str]:
    """The statements ``conn`` was allowed to run (each refused one is rolled back)."""
    allowed = []
    for statement in statements:
        try:
            conn.execute(statement)
        except psycopg.Error as exc:
            assert isinstance(exc, REFUSED) or "permission denied" in str(exc), (
                f"{statement}: {exc!r}"
            )
        else:
            allowed.append(statement)
    return allowed


AGGREGATES = {f"public.kline_{n}" for n in ("1m", "5m", "15m", "1h", "1d")}
# The schema these tests know: the kline relations, the checkpoints, the catalogue, the plain
# flavour's functions (the privileges on relations a later migration adds are its own tests').
SCHEMA = {
    "schema public",
    "public.kline_1s",
    *AGGREGATES,
    "public.ingest_checkpoint",
    "public.kline_interval",
    "public.schema_migrations",
    "public.retention_policy",
    "function kline_rollup(text,text[],timestamp with time zone[],timestamp with time zone[])",
    "function kline_upkeep()",
}


def schema_objects(held: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """The privileges of ``held`` on the schema these tests know."""
    return {(o, p) for o, p in held if o in SCHEMA}


def kline_1s_storage(owner: Conn) -> set[str]:
    """kline_1s's partitions (plain) or chunks and their columnstore (TimescaleDB)."""
    rows = owner.execute(
        "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'kline_1s'::regclass"
    ).fetchall()
    names = {str(r[0]) for r in rows}
    if is_timescaledb(owner):
        rows = owner.execute(
            """WITH data AS (
                   SELECT id, schema_name, table_name FROM _timescaledb_catalog.hypertable
                   WHERE id = (SELECT compressed_hypertable_id FROM _timescaledb_catalog.hypertable
                               WHERE table_name = 'kline_1s'))
               SELECT schema_name || '.' || table_name FROM data
               UNION ALL
               SELECT c.schema_name || '.' || c.table_name FROM _timescaledb_catalog.chunk c
               JOIN _timescaledb_catalog.hypertable h ON h.id = c.hypertable_id
               WHERE h.table_name = 'kline_1s' OR h.id IN (SELECT id FROM data)"""
        ).fetchall()
        names |= {str(r[0]) for r in rows}
    return names


def write_klines(settings: Settings, seconds: int) -> None:
    """Write ``seconds`` closed klines as the inserter does, as the inserter's role."""
    klines = sim_klines(settings.symbols, 1, past_start(seconds), seconds)
    with psycopg.connect(settings.inserter_dsn) as conn:
        write_batch(conn, staging_rows(enumerate(klines)))


def test_inserter_role_writes_klines_and_checkpoints(stage_db: tuple[Settings, Conn]) -> None:
    settings, owner = stage_db
    write_klines(settings, 120)
    write_klines(settings, 120)  # a redelivery: upserted, the checkpoint widened, no duplicate
    assert owner.execute("SELECT count(*) FROM kline_1s").fetchone() == (120,)
    assert owner.execute(
        "SELECT count(*) FROM ingest_checkpoint WHERE aggregated_at IS NULL"
    ).fetchone() == (1,)

    held = granted(owner, "cryptochart_app")
    assert schema_objects(held) == {
        ("public.kline_1s", "SELECT"),
        ("public.kline_1s", "INSERT"),
        ("public.kline_1s", "UPDATE"),
        ("public.ingest_checkpoint", "SELECT"),
        ("public.ingest_checkpoint", "INSERT"),
        ("schema public", "USAGE"),
    }
    storage = kline_1s_storage(owner)
    elsewhere = {(o, p) for o, p in held if not o.startswith(("public.", "schema "))}
    assert {o for o, p in elsewhere if p != "SELECT"} <= storage, "writes beyond kline_1s"
    assert {o for o, _ in elsewhere} <= timescaledb_readable(owner) | storage


def test_inserter_role_is_refused_everything_else(stage_db: tuple[Settings, Conn]) -> None:
    settings, owner = stage_db
    write_klines(settings, 60)
    timescaledb = is_timescaledb(owner)
    refresh = (
        "CALL refresh_continuous_aggregate('kline_1m', now() - interval '1 day', now())"
        if timescaledb
        else "SELECT kline_rollup('1m', ARRAY['STAGE0USDT'], "
        "ARRAY[now() - interval '1 day'], ARRAY[now()])"
    )
    with psycopg.connect(settings.inserter_dsn, autocommit=True) as conn:
        allowed = refused(
            conn,
            [
                "DELETE FROM kline_1s",
                "TRUNCATE kline_1s",
                "DELETE FROM ingest_checkpoint",
                "UPDATE ingest_checkpoint SET aggregated_at = now()",  # marking is the job's
                "SELECT * FROM kline_1m",
                "SELECT * FROM kline_1d",
                "SELECT * FROM kline_interval",
                "SELECT * FROM schema_migrations",
                "SELECT * FROM retention_policy",
                refresh,
                "SELECT kline_upkeep()",
                "DROP TABLE ingest_checkpoint",
                "DROP TABLE kline_1s",
                "ALTER TABLE kline_1s ADD COLUMN x int",
                "CREATE INDEX ON kline_1s (close)",
                "CREATE TABLE public.mine (x int)",
                "CREATE SCHEMA mine",
                "SET ROLE cryptochart",
                "SET ROLE cryptochart_minute_job",
                "SELECT pg_read_file('postgresql.conf')",
                "COPY (SELECT 1) TO PROGRAM 'true'",
            ],
        )
    assert allowed == []
    assert owner.execute("SELECT count(*) FROM kline_1s").fetchone() == (60,)
    assert owner.execute(
        "SELECT count(*) FROM ingest_checkpoint WHERE aggregated_at IS NULL"
    ).fetchone() == (1,)


def test_minute_job_role_refreshes_and_marks(stage_db: tuple[Settings, Conn]) -> None:
    settings, owner = stage_db
    write_klines(settings, 180)
    job = MinuteJob(settings)
    with psycopg.connect(settings.minute_job_dsn) as conn:
        report = job.run_once(conn)
        job._upkeep(conn)  # partitions and retention (plain), old checkpoints
    assert report.checkpoints == 1
    assert owner.execute("SELECT sum(seconds) FROM kline_1m").fetchone() == (180,)
    assert owner.execute("SELECT sum(seconds) FROM kline_1d").fetchone() == (180,)
    assert owner.execute(
        "SELECT count(*) FROM ingest_checkpoint WHERE aggregated_at IS NULL"
    ).fetchone() == (0,)

    row = owner.execute(
        "SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, "
        "ARRAY(SELECT roleid::regrole::text FROM pg_auth_members WHERE member = r.oid) "
        "FROM pg_roles r WHERE rolname = 'cryptochart_minute_job'"
    ).fetchone()
    assert row is not None and row[:5] == (False, False, False, False, False)
    assert isinstance(row[5], list) and set(row[5]) <= {"cryptochart_aggregates"}
    held = schema_objects(granted(owner, "cryptochart_minute_job"))
    expected = {
        ("public.ingest_checkpoint", "SELECT"),
        ("public.ingest_checkpoint", "DELETE"),
        ("public.kline_interval", "SELECT"),
        ("public.schema_migrations", "SELECT"),
        ("schema public", "USAGE"),
    }
    if is_timescaledb(owner):
        # Ownership of the aggregates (every privilege, refused as DDL by the event trigger)
        # and the reading of kline_1s that refreshing them takes.
        aggregates = {o for o, _ in held if o in AGGREGATES}
        assert aggregates == {f"public.kline_{n}" for n in ("1m", "5m", "15m", "1h", "1d")}
        expected |= {(o, p) for o, p in held if o in aggregates}
        expected |= {("public.kline_1s", "SELECT")}
    else:
        expected |= {
            (
                "function kline_rollup(text,text[],timestamp with time zone[],"
                "timestamp with time zone[])",
                "EXECUTE (SECURITY DEFINER)",
            ),
            ("function kline_upkeep()", "EXECUTE (SECURITY DEFINER)"),
        }
    assert held == expected


def test_minute_job_role_is_refused_everything_else(stage_db: tuple[Settings, Conn]) -> None:
    settings, owner = stage_db
    write_klines(settings, 60)
    timescaledb = is_timescaledb(owner)
    kind = "MATERIALIZED VIEW" if timescaledb else "TABLE"
    statements = [
        "INSERT INTO kline_1s SELECT * FROM kline_1s",
        "UPDATE kline_1s SET close = 0",
        "DELETE FROM kline_1s",
        "TRUNCATE kline_1s",
        "INSERT INTO ingest_checkpoint (symbol, first_open_time, last_open_time, rows) "
        "VALUES ('X', now(), now(), 1)",
        "UPDATE ingest_checkpoint SET rows = 0",
        "UPDATE ingest_checkpoint SET aggregated_at = now()",  # marking: through the function
        "UPDATE ingest_checkpoint SET first_open_time = now()",
        f"DROP {kind} kline_1m CASCADE",
        f"ALTER {kind} kline_1h RENAME TO mine",
        "GRANT SELECT ON kline_1m TO PUBLIC",
        "COMMENT ON TABLE ingest_checkpoint IS 'mine'",
        "DROP TABLE ingest_checkpoint",
        "ALTER TABLE kline_1s ADD COLUMN x int",
        "CREATE TABLE public.mine (x int)",
        "CREATE SCHEMA mine",
        "CREATE TEMP TABLE mine (x int)",
        "SET ROLE cryptochart",
        "SET ROLE cryptochart_app",
        "SELECT pg_read_file('postgresql.conf')",
    ]
    if timescaledb:
        statements += [
            # A member may take the owning role: the event trigger still refuses its DDL.
            "SET ROLE cryptochart_aggregates; DROP MATERIALIZED VIEW kline_1d CASCADE",
        ]
    else:
        statements += [
            "INSERT INTO kline_1m SELECT * FROM kline_1m",
            "DELETE FROM kline_1h",
            "SELECT * FROM retention_policy",
            "CREATE TABLE kline_1s_p20000101 PARTITION OF kline_1s "
            "FOR VALUES FROM ('2000-01-01 00:00+00') TO ('2000-01-02 00:00+00')",
        ]
    with psycopg.connect(settings.minute_job_dsn, autocommit=True) as conn:
        allowed = refused(conn, statements)
    assert allowed == []
    assert owner.execute("SELECT count(*) FROM kline_1s").fetchone() == (60,)
    names = {
        str(r[0])
        for r in owner.execute(
            "SELECT relname FROM pg_class WHERE relname LIKE 'kline\\_%' AND relkind IN "
            "('r', 'p', 'v', 'm') AND relnamespace = 'public'::regnamespace"
        ).fetchall()
    }
    assert {"kline_1m", "kline_5m", "kline_15m", "kline_1h", "kline_1d"} <= names


def test_supervisor_hands_each_stage_its_own_url_only() -> None:
    settings = Settings(database_url="postgresql://cryptochart:secret@db.example:5432/cc")
    base = {**settings.as_env(), "CRYPTOCHART_API_DATABASE_URL": "", "PATH": "/usr/bin"}
    urls = {
        child.name: {k: v for k, v in child.env.items() if k.endswith("DATABASE_URL")}
        for child in stage_children(settings, base, [])
    }
    assert urls == {
        "inserter": {"CRYPTOCHART_INSERTER_DATABASE_URL": settings.inserter_dsn},
        "minute job": {"CRYPTOCHART_MINUTE_JOB_DATABASE_URL": settings.minute_job_dsn},
        "producer": {},
        "api": {"CRYPTOCHART_API_DATABASE_URL": settings.api_dsn},
    }
    assert conninfo_to_dict(settings.inserter_dsn) == {
        "user": "cryptochart_app",
        "host": "db.example",
        "port": "5432",
        "dbname": "cc",
    }
    assert "secret" not in settings.minute_job_dsn + settings.api_dsn


def test_stages_connect_as_their_roles(stage_db: tuple[Settings, Conn]) -> None:
    """The inserter and the minute job as `cryptochart run` starts them store and aggregate klines
    from Kafka as their own roles; nothing of theirs connects as the owner."""
    settings, owner = stage_db
    dbname = owner.info.dbname
    children = {c.name: c for c in stage_children(settings, settings.as_env(), [])}
    workers = [children["inserter"], children["minute job"]]
    for worker in workers:
        worker.start()
    try:
        produce(settings, sim_klines(settings.symbols, 1, past_start(120), 120))
        wait_for(
            lambda: owner.execute("SELECT sum(seconds) FROM kline_1m").fetchone() == (120,),
            60,
            "120 seconds stored and aggregated",
        )

        def users() -> set[str]:
            rows = owner.execute(
                "SELECT usename FROM pg_stat_activity WHERE datname = %s AND pid <> "
                "pg_backend_pid() AND backend_type = 'client backend'",
                (dbname,),
            ).fetchall()
            return {str(r[0]) for r in rows}

        assert users() == {"cryptochart_app", "cryptochart_minute_job"}
    finally:
        for worker in workers:
            assert worker.proc is not None
            worker.proc.terminate()
            worker.proc.wait(30)


def test_roles_write_and_refresh_over_compressed_chunks(stage_db: tuple[Settings, Conn]) -> None:
    """TimescaleDB: a corrected kline upserted by the inserter's role into a compressed kline_1s
    chunk, then re-aggregated by the minute job's role into compressed aggregate chunks."""
    settings, owner = stage_db
    if not is_timescaledb(owner):
        pytest.skip("timescaledb flavour only")
    start = past_start(120)
    klines = sim_klines(settings.symbols, 1, start, 120)
    with psycopg.connect(settings.inserter_dsn) as conn:
        write_batch(conn, staging_rows(enumerate(klines)))
    job = MinuteJob(settings)
    with psycopg.connect(settings.minute_job_dsn) as conn:
        job.run_once(conn)
    for relation in ("kline_1s", "kline_1m", "kline_1h"):
        owner.execute("SELECT compress_chunk(c) FROM show_chunks(%s) c", (relation,))
    # A consistent correction (the close stays within the high): an inconsistent one is set aside.
    close = klines[30].close + 1
    corrected = msgspec.structs.replace(
        klines[30], close=close, high=max(klines[30].high, close), trades=999_999
    )
    with psycopg.connect(settings.inserter_dsn) as conn:
        write_batch(conn, staging_rows([(0, corrected)]))
    with psycopg.connect(settings.minute_job_dsn) as conn:
        assert job.run_once(conn).checkpoints == 1
    trades = sum(k.trades for k in klines) - klines[30].trades + 999_999
    assert owner.execute("SELECT count(*), sum(trades) FROM kline_1s").fetchone() == (120, trades)
    assert owner.execute("SELECT sum(trades) FROM kline_1m").fetchone() == (trades,)
    assert owner.execute("SELECT sum(trades) FROM kline_1h").fetchone() == (trades,)
