"""Security of the database roles: the analyst and the API's role read the documented relations
(kline_1s, kline_1m, kline_5m, kline_15m, kline_1h, kline_1d, their kline_*_stats views and
symbol_info) and can do nothing else: no other reads, no writes, no DDL. Checked both from the
catalogue (every privilege on every object) and by trying, as each role, what it must not do.

On TimescaleDB the readers also hold SELECT, by the extension's design, on its own catalogue and
information views (granted to PUBLIC: metadata such as chunk ranges and job settings) and on the
internal relations that hold the documented relations' rows (kline_1s's chunks, the aggregates'
materialised hypertables, their chunks and views: a grant on a hypertable reaches every chunk it
makes). That is all they hold there: exactly those objects, SELECT only, nothing writable."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg
import pytest

from cryptochart.core.database import Conn, with_dbname
from cryptochart.core.settings import Settings
from cryptochart.ingest.inserter import staging_rows, write_batch
from cryptochart.ingest.minute_job import MinuteJob
from tests.faults.conftest import Scenario
from tests.faults.expected import past_start, sim_klines

KLINES = {"kline_1s", "kline_1m", "kline_5m", "kline_15m", "kline_1h", "kline_1d"}
DOCUMENTED = KLINES | {f"{r}_stats" for r in KLINES} | {"symbol_info"}
READERS = ("cryptochart_analyst", "cryptochart_api")
TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")


@pytest.fixture
def owner(scenario: Scenario) -> Iterator[Conn]:
    """The owner's connection to a migrated database with a few rows in every kline relation."""
    settings: Settings = scenario(symbols=("ROLE0USDT",))
    with psycopg.connect(settings.database_url) as conn:
        write_batch(
            conn, staging_rows(enumerate(sim_klines(settings.symbols, 1, past_start(120), 120)))
        )
        MinuteJob(settings).run_once(conn)
        conn.autocommit = True
        yield conn


def connect_as(owner: Conn, role: str) -> Conn:
    # The owner's parameters but its password (a password file named there still applies).
    url = with_dbname(owner.info.dsn, owner.info.dbname, user=role)
    return psycopg.connect(url, autocommit=True)


def granted(owner: Conn, role: str) -> set[tuple[str, str]]:
    """Every (object, privilege) ``role`` holds outside the system schemas, from the catalogue."""
    rows = owner.execute(
        """
        SELECT n.nspname || '.' || c.relname, p.privilege
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        CROSS JOIN unnest(%(table_privileges)s::text[]) AS p(privilege)
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
          AND n.nspname NOT LIKE 'pg_temp%%' AND n.nspname NOT LIKE 'pg_toast_temp%%'
          AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
          AND has_table_privilege(%(role)s, c.oid, p.privilege)
        UNION ALL
        SELECT n.nspname || '.' || c.relname || ' (columns)', 'SELECT/INSERT/UPDATE'
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
          AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
          AND NOT has_table_privilege(%(role)s, c.oid, 'SELECT')
          AND has_any_column_privilege(%(role)s, c.oid, 'SELECT, INSERT, UPDATE')
        UNION ALL
        SELECT n.nspname || '.' || c.relname, p.privilege
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        CROSS JOIN unnest(ARRAY['USAGE', 'SELECT', 'UPDATE']) AS p(privilege)
        WHERE c.relkind = 'S' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND has_sequence_privilege(%(role)s, c.oid, p.privilege)
        UNION ALL
        SELECT 'schema ' || n.nspname, p.privilege
        FROM pg_namespace n CROSS JOIN unnest(ARRAY['CREATE', 'USAGE']) AS p(privilege)
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
          AND n.nspname NOT LIKE 'pg_temp%%' AND n.nspname NOT LIKE 'pg_toast_temp%%'
          AND has_schema_privilege(%(role)s, n.oid, p.privilege)
        UNION ALL
        SELECT 'function ' || p.oid::regprocedure::text, 'EXECUTE (SECURITY DEFINER)'
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND p.prosecdef
          AND has_function_privilege(%(role)s, p.oid, 'EXECUTE')
          AND has_schema_privilege(%(role)s, n.oid, 'USAGE')
        UNION ALL
        SELECT 'database', 'CREATE'
        WHERE has_database_privilege(%(role)s, current_database(), 'CREATE')
        """,
        {"role": role, "table_privileges": list(TABLE_PRIVILEGES)},
    ).fetchall()
    return {(str(obj), str(privilege)) for obj, privilege in rows}


TIMESCALEDB_SCHEMAS = (
    "_timescaledb_cache",
    "_timescaledb_catalog",
    "_timescaledb_config",
    "_timescaledb_functions",
    "_timescaledb_internal",
    "timescaledb_experimental",
    "timescaledb_information",
)


def timescaledb_readable(owner: Conn) -> set[str]:
    """The objects TimescaleDB lets every reader of the documented relations SELECT: the
    extension's own tables, views and sequences (its metadata), and the internal relations
    holding the documented relations' rows, found from its catalogue (not from privileges)."""
    if owner.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone() is None:
        return set()
    rows = owner.execute(
        """
        WITH RECURSIVE data AS (  -- kline_1s, the aggregates' storage, their columnstores
            SELECT h.* FROM _timescaledb_catalog.hypertable h
            WHERE h.table_name = 'kline_1s' OR h.id IN (
                SELECT mat_hypertable_id FROM _timescaledb_catalog.continuous_agg
                WHERE user_view_name = ANY(%(documented)s))
            UNION ALL
            SELECT h.* FROM _timescaledb_catalog.hypertable h
            JOIN data ON h.id = data.compressed_hypertable_id
        )
        SELECT n.nspname || '.' || c.relname FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid
        JOIN pg_extension e ON e.oid = d.refobjid AND d.deptype = 'e'
        WHERE e.extname = 'timescaledb'
        UNION ALL
        SELECT h.schema_name || '.' || h.table_name FROM data h
        UNION ALL
        SELECT c.schema_name || '.' || c.table_name FROM _timescaledb_catalog.chunk c
        WHERE c.hypertable_id IN (SELECT id FROM data)
        UNION ALL
        SELECT a.partial_view_schema || '.' || a.partial_view_name
        FROM _timescaledb_catalog.continuous_agg a WHERE a.user_view_name = ANY(%(documented)s)
        UNION ALL
        SELECT a.direct_view_schema || '.' || a.direct_view_name
        FROM _timescaledb_catalog.continuous_agg a WHERE a.user_view_name = ANY(%(documented)s)
        """,
        {"documented": sorted(DOCUMENTED)},
    ).fetchall()
    return {str(name) for (name,) in rows}


@pytest.mark.parametrize("role", READERS)
def test_catalogue_grants_reading_the_documented_relations_only(owner: Conn, role: str) -> None:
    expected = {(f"public.{r}", "SELECT") for r in DOCUMENTED} | {("schema public", "USAGE")}
    if role == "cryptochart_api":  # the history cache's signal (migration 0011): four columns
        expected |= {("public.ingest_checkpoint (columns)", "SELECT/INSERT/UPDATE")}
        columns = owner.execute(
            "SELECT column_name::text, privilege_type::text"
            " FROM information_schema.column_privileges"
            " WHERE grantee = %s AND table_name = 'ingest_checkpoint'",
            (role,),
        ).fetchall()
        assert set(columns) == {
            (c, "SELECT") for c in ("symbol", "first_open_time", "last_open_time", "aggregated_at")
        }
    held = granted(owner, role)
    extension = {(obj, privilege) for obj, privilege in held if not obj.startswith("public.")}
    extension -= {("schema public", "USAGE")}
    assert held - extension == expected
    readable = timescaledb_readable(owner)
    assert {obj for obj, _ in extension if not obj.startswith("schema ")} <= readable
    assert {p for obj, p in extension if not obj.startswith("schema ")} <= {"SELECT"}
    schemas = {("schema " + name, "USAGE") for name in TIMESCALEDB_SCHEMAS} if readable else set()
    assert {(obj, p) for obj, p in extension if obj.startswith("schema ")} <= schemas


@pytest.mark.parametrize("role", READERS)
def test_role_has_no_special_attributes(owner: Conn, role: str) -> None:
    row = owner.execute(
        "SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, "
        "(SELECT count(*) FROM pg_auth_members WHERE member = r.oid) "
        "FROM pg_roles r WHERE rolname = %s",
        (role,),
    ).fetchone()
    assert row == (False, False, False, False, False, 0)


FORBIDDEN = (
    "INSERT INTO kline_1s SELECT * FROM kline_1s LIMIT 1",
    "UPDATE kline_1m SET volume = 0",
    "DELETE FROM kline_1h",
    "TRUNCATE kline_1d",
    "COPY kline_5m FROM STDIN",
    "SELECT * FROM ingest_checkpoint",
    "SELECT * FROM kline_interval",
    "SELECT * FROM schema_migrations",
    "SELECT * FROM retention_policy",
    "SELECT * FROM kline_1s_default",
    "SELECT * FROM partman.part_config",
    "SELECT kline_rollup('1m', ARRAY['ROLE0USDT'], ARRAY[now() - interval '1 day'], ARRAY[now()])",
    "CREATE TABLE public.mine (x int)",
    "CREATE SCHEMA mine",
    "CREATE VIEW public.mine AS SELECT 1",
    "CREATE FUNCTION public.mine() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "ALTER TABLE kline_1s ADD COLUMN x int",
    "CREATE INDEX ON kline_1s (close)",
    "SET ROLE cryptochart",
    "SELECT pg_read_file('postgresql.conf')",
    "COPY (SELECT 1) TO PROGRAM 'true'",
    "SELECT lo_import('/etc/passwd')",
)


@pytest.mark.parametrize("role", READERS)
def test_role_is_refused_everything_else(owner: Conn, role: str) -> None:
    partition = owner.execute(
        "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'kline_1s'::regclass "
        "ORDER BY 1 LIMIT 1"
    ).fetchone()
    assert partition is not None
    # A TimescaleDB chunk holds kline_1s's rows and is readable by design (see the top).
    readable_partition = partition[0] in timescaledb_readable(owner)
    allowed = []
    with connect_as(owner, role) as conn:
        for relation in sorted(DOCUMENTED):
            conn.execute(f"SELECT count(*) FROM {relation}").fetchone()
        aggregate_kind = "MATERIALIZED VIEW" if readable_partition else "TABLE"
        others = (
            *([] if readable_partition else [f"SELECT * FROM {partition[0]}"]),
            f"DROP {aggregate_kind} kline_15m",
            f"SELECT pg_terminate_backend({owner.info.backend_pid})",
            f"SELECT pg_cancel_backend({owner.info.backend_pid})",
        )
        for statement in (*FORBIDDEN, *others):
            try:
                conn.execute(statement)
            except psycopg.Error as exc:
                assert isinstance(
                    exc,
                    psycopg.errors.InsufficientPrivilege
                    | psycopg.errors.UndefinedTable  # the schema is not even visible
                    | psycopg.errors.UndefinedFunction  # the other flavour's function
                    | psycopg.errors.QueryCanceled,
                ) or "permission denied" in str(exc), f"{statement}: {exc!r}"
            else:
                allowed.append(statement)
        for grant in ("GRANT SELECT ON kline_1s TO PUBLIC", "GRANT ALL ON kline_1m TO PUBLIC"):
            # Refused, or accepted with the warning "no privileges were granted": checked below.
            with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
                conn.execute(grant)
    assert allowed == []
    ours = {
        (o, p)
        for o, p in granted(owner, "public")
        if not o.removeprefix("schema ").startswith(TIMESCALEDB_SCHEMAS)
    }
    assert ours == {("schema public", "USAGE")}, "a role handed privileges on"
    assert owner.execute("SELECT count(*) FROM kline_1s").fetchone() == (120,)


@pytest.mark.parametrize("role", READERS)
def test_role_cannot_create_temporary_objects(owner: Conn, role: str) -> None:
    with connect_as(owner, role) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("CREATE TEMP TABLE mine (x int)")
