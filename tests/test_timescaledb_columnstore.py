"""TimescaleDB's columnstore (compression) and its job scheduler, on the real server.

A late or corrected kline that falls into a compressed kline_1s chunk lands exactly once, through
the inserter's own SQL, and the minute job re-aggregates its minute exactly at every level, over
compressed aggregate chunks. And the retention and compression policies that `cryptochart migrate`
sets really run on TimescaleDB's own scheduler: old chunks dropped (compressed ones too), older
chunks compressed, the data still exact.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

import msgspec
import psycopg
import pytest

from cryptochart.core.database import Conn
from cryptochart.core.kline import Kline
from cryptochart.core.settings import Settings
from cryptochart.db.migrate import detect_flavour, migrate
from cryptochart.ingest.inserter import staging_rows, write_batch
from cryptochart.ingest.minute_job import MinuteJob
from tests.conftest import flavours_under_test
from tests.faults.expected import LEVELS, by_key, candles, minute_start, sim_klines
from tests.faults.stored import difference, stored
from tests.faults.waiting import poll_until
from tests.pipeline import as_time as at
from tests.policy_jobs import POLICIES, set_jobs

DAY_MS = 86_400_000
AGGREGATES = tuple(f"kline_{level}" for level in LEVELS)


@pytest.fixture(scope="module")
def timescaledb(
    base_settings: Settings, database_factory: Callable[[str], str]
) -> Callable[..., Settings]:
    """Makes a fresh database migrated to the TimescaleDB flavour with the given settings."""
    if "timescaledb" not in flavours_under_test():
        pytest.skip("TimescaleDB flavour not under test (CRYPTOCHART_TEST_FLAVOURS)")
    with psycopg.connect(base_settings.database_url) as conn:
        if detect_flavour(conn) != "timescaledb":
            pytest.skip("the server does not offer TimescaleDB (run scripts/timescaledb.sh)")

    def make(label: str, **changes: str) -> Settings:
        url = database_factory(label)
        settings = replace(base_settings, database_url=url, db_flavour="timescaledb")
        settings = replace(settings, **changes)  # type: ignore[arg-type]
        with psycopg.connect(url) as conn:
            migrate_with(conn, settings)
        return settings

    return make


def migrate_with(conn: Conn, settings: Settings) -> None:
    migrate(
        conn,
        settings.retention_1s,
        settings.retention_aggregates,
        "timescaledb",
        compress_after=settings.compress_after,
        compress_aggregates_after=settings.compress_aggregates_after,
    )


@pytest.fixture
def conn_of() -> Iterator[Callable[[Settings], Conn]]:
    opened: list[Conn] = []

    def connect(settings: Settings) -> Conn:
        opened.append(psycopg.connect(settings.database_url, autocommit=True))
        return opened[-1]

    yield connect
    for conn in opened:
        conn.close()


def test_migrate_sets_columnstore_and_its_policies(
    timescaledb: Callable[..., Settings], conn_of: Callable[[Settings], Conn]
) -> None:
    settings = timescaledb(
        "cs_policies", compress_after="2 days", compress_aggregates_after="9 days"
    )
    conn = conn_of(settings)
    columnstore = conn.execute(
        "SELECT coalesce(c.view_name, s.hypertable::text), s.segmentby, s.orderby "
        "FROM timescaledb_information.hypertable_columnstore_settings s "
        "LEFT JOIN timescaledb_information.continuous_aggregates c "
        "ON format('%I.%I', c.materialization_hypertable_schema, "
        "c.materialization_hypertable_name)::regclass = s.hypertable"
    ).fetchall()
    assert sorted(columnstore) == sorted(
        (r, "symbol", "open_time") for r in ("kline_1s", *AGGREGATES)
    )
    assert compress_after(conn) == {"kline_1s": "2 days", **{r: "9 days" for r in AGGREGATES}}
    # A changed setting is re-applied by the next migrate, one policy per relation.
    migrate_with(conn, replace(settings, compress_after="3 days"))
    assert compress_after(conn) == {"kline_1s": "3 days", **{r: "9 days" for r in AGGREGATES}}
    with pytest.raises(ValueError, match="CRYPTOCHART_COMPRESS_AFTER"):
        migrate_with(conn, replace(settings, compress_after="-1 hour"))
    with pytest.raises(ValueError, match="CRYPTOCHART_COMPRESS_AGGREGATES_AFTER"):
        migrate_with(conn, replace(settings, compress_aggregates_after="soon"))


def test_late_and_corrected_klines_land_once_in_compressed_chunks(
    timescaledb: Callable[..., Settings], conn_of: Callable[[Settings], Conn]
) -> None:
    settings = timescaledb("cs_late")
    conn = conn_of(settings)
    set_jobs(conn, "scheduled => false")  # compressed by hand below, not when the scheduler says
    symbols = ["LATEAUSDT", "LATEBUSDT"]
    start = minute_start(now_ms(conn) - 3 * DAY_MS)  # older than compress_after, kept by retention
    klines = sim_klines(symbols, 11, start, 600)
    late = next(k for k in klines if k.symbol == "LATEAUSDT" and k.open_time == start + 197_000)
    first = [k for k in klines if k is not late]
    write_batch(conn, staging_rows(enumerate(first)))
    MinuteJob(settings).run_once(conn)
    assert_exact(settings, symbols, first)

    for relation in ("kline_1s", *AGGREGATES):
        conn.execute("SELECT compress_chunk(c) FROM show_chunks(%s) c", (relation,))
    assert uncompressed_chunks(conn) == []

    before = next(k for k in klines if k.symbol == "LATEBUSDT" and k.open_time == start + 330_000)
    corrected = msgspec.structs.replace(
        before,
        close=before.close + Decimal("0.01"),
        high=max(before.high, before.close + Decimal("0.01")),
        volume=before.volume + Decimal("0.00000001"),
        trades=before.trades + 1,
    )
    redelivered = klines[0]  # identical to what is stored: changes nothing, counts nothing
    write_batch(conn, staging_rows(enumerate([redelivered, late, corrected])))
    final = [corrected if k is before else k for k in klines]
    assert difference(by_key(final), stored(settings.database_url, "kline_1s", symbols)) == ""
    counts = conn.execute("SELECT count(*), count(DISTINCT (symbol, open_time)) FROM kline_1s")
    assert counts.fetchone() == (len(klines), len(klines))
    pending = conn.execute(
        "SELECT symbol, first_open_time, last_open_time, rows FROM ingest_checkpoint "
        "WHERE aggregated_at IS NULL ORDER BY symbol"
    ).fetchall()
    assert pending == [
        ("LATEAUSDT", at(late.open_time), at(late.open_time), 1),
        ("LATEBUSDT", at(before.open_time), at(before.open_time), 1),
    ]

    report = MinuteJob(settings).run_once(conn)
    assert {(w.symbol, w.start) for w in report.windows} == {
        ("LATEAUSDT", at(minute_start(late.open_time))),
        ("LATEBUSDT", at(minute_start(before.open_time))),
    }
    assert_exact(settings, symbols, final)
    # The policy's next pass recompresses the chunks the late rows touched; still exact.
    for relation in ("kline_1s", *AGGREGATES):
        conn.execute("SELECT compress_chunk(c) FROM show_chunks(%s) c", (relation,))
    assert uncompressed_chunks(conn) == []
    assert_exact(settings, symbols, final)


def test_job_scheduler_runs_retention_and_compression(
    timescaledb: Callable[..., Settings], conn_of: Callable[[Settings], Conn]
) -> None:
    settings = timescaledb("cs_jobs")
    conn = conn_of(settings)
    # Ages from the chunk sizes (6 h for kline_1s, up to months for kline_1d): `kept` lies in
    # chunks wholly older than compress_after and within the retention, `old` in chunks wholly
    # past it, at every level.
    span = longest_chunk_days(conn) + 2  # a chunk, a day bucket and a day of compress_after
    settings = replace(
        settings,
        retention_1s=f"{2 * span} days",
        retention_aggregates=f"{2 * span} days",
        compress_after="1 day",
        compress_aggregates_after="1 day",
    )
    migrate_with(conn, settings)
    set_jobs(conn, "scheduled => false")  # no run may count before the data is in place
    symbols = ["JOBAUSDT", "JOBBUSDT"]
    now = now_ms(conn)
    old = sim_klines(symbols, 21, minute_start(now - 3 * span * DAY_MS), 120)
    kept = sim_klines(symbols, 22, minute_start(now - span * DAY_MS), 120)
    write_batch(conn, staging_rows(enumerate(old + kept)))
    MinuteJob(replace(settings, retention_1s="100 years")).run_once(conn)  # `old` too
    assert_exact(settings, symbols, old + kept)
    # Compressed by hand, so the retention jobs must drop compressed chunks.
    for relation in ("kline_1s", *AGGREGATES):
        conn.execute(
            "SELECT compress_chunk(c) FROM show_chunks(%s, older_than => %s::interval) c",
            (relation, settings.retention_1s),
        )
    assert {r for r, _ in old_chunks(conn, settings.retention_1s)} == {"kline_1s", *AGGREGATES}
    assert {r for r, _ in uncompressed_chunks(conn)} == {"kline_1s", *AGGREGATES}

    wait_for_scheduler(conn)
    jobs = policy_jobs(conn)
    assert sorted(jobs.values()) == sorted(
        (proc, r) for proc in POLICIES for r in ("kline_1s", *AGGREGATES)
    )
    resumed = conn.execute("SELECT now()").fetchone()
    try:
        set_jobs(conn, "schedule_interval => '1 second', next_start => now(), scheduled => true")
        poll_until(
            lambda: runs_after(conn, set(jobs), resumed[0] if resumed else None),
            60,
            "a successful run of every retention and compression job",
        )
    finally:
        set_jobs(conn, "scheduled => false")  # a 1 s schedule would hold workers all session

    assert old_chunks(conn, settings.retention_1s) == []
    assert uncompressed_chunks(conn) == []
    assert_exact(settings, symbols, kept)


# --- helpers ------------------------------------------------------------------------------------


def now_ms(conn: Conn) -> int:
    row = conn.execute("SELECT (extract(epoch FROM now()) * 1000)::bigint").fetchone()
    assert row is not None
    return int(str(row[0]))


def assert_exact(settings: Settings, symbols: list[str], klines: list[Kline]) -> None:
    """kline_1s holds exactly ``klines``, once each; every aggregate level their candles."""
    url = settings.database_url
    assert difference(by_key(klines), stored(url, "kline_1s", symbols)) == ""
    for level, bucket_ms in LEVELS.items():
        expected = candles(klines, bucket_ms)
        assert difference(expected, stored(url, f"kline_{level}", symbols)) == "", level


def compress_after(conn: Conn) -> dict[str, str]:
    rows = conn.execute(
        "SELECT hypertable_name, config->>'compress_after' FROM timescaledb_information.jobs "
        "WHERE proc_name = 'policy_compression'"
    ).fetchall()
    assert len(rows) == len({r for r, _ in rows}), rows
    return {str(r): str(after) for r, after in rows}


def policy_jobs(conn: Conn) -> dict[int, tuple[str, str]]:
    """Job id → (procedure, relation) of the retention and compression policies."""
    rows = conn.execute(
        "SELECT job_id, proc_name, hypertable_name FROM timescaledb_information.jobs "
        "WHERE proc_name = ANY(%s)",
        (list(POLICIES),),
    ).fetchall()
    return {int(str(j)): (str(p), str(r)) for j, p, r in rows}


def chunks(conn: Conn) -> list[tuple[str, str, bool, datetime]]:
    """(relation, chunk, compressed, range end) of kline_1s and every aggregate."""
    rows = conn.execute(
        "SELECT coalesce(a.view_name, c.hypertable_name), c.chunk_name, c.is_compressed, "
        "c.range_end FROM timescaledb_information.chunks c "
        "LEFT JOIN timescaledb_information.continuous_aggregates a "
        "ON a.materialization_hypertable_name = c.hypertable_name ORDER BY 1, 4"
    ).fetchall()
    return [(str(r), str(n), bool(z), e) for r, n, z, e in rows if isinstance(e, datetime)]


def uncompressed_chunks(conn: Conn) -> list[tuple[str, str]]:
    return [(r, n) for r, n, compressed, _ in chunks(conn) if not compressed]


def old_chunks(conn: Conn, retention: str) -> list[tuple[str, str]]:
    """Chunks whose data is all older than ``retention``: a retention policy drops them."""
    old = []
    for relation, name, _, end in chunks(conn):
        row = conn.execute("SELECT %s < now() - %s::interval", (end, retention)).fetchone()
        if row and row[0]:
            old.append((relation, name))
    return old


def longest_chunk_days(conn: Conn) -> int:
    row = conn.execute(
        "SELECT ceil(extract(epoch FROM max(time_interval)) / 86400)::int "
        "FROM timescaledb_information.dimensions"
    ).fetchone()
    assert row is not None
    return int(str(row[0]))


def runs_after(conn: Conn, jobs: set[int], since: object) -> str | bool:
    """True once each job finished a successful run after ``since``; else which did not."""
    rows = conn.execute(
        "SELECT job_id, last_run_status, last_successful_finish > %s "
        "FROM timescaledb_information.job_stats WHERE job_id = ANY(%s)",
        (since, list(jobs)),
    ).fetchall()
    waiting = sorted((int(str(j)), str(status)) for j, status, done in rows if not done)
    return f"jobs not yet run since (id, last status): {waiting}" if waiting else True


def wait_for_scheduler(conn: Conn) -> None:
    """TimescaleDB starts one scheduler per database, if one of its background worker slots is
    free; fail saying so rather than wait for jobs that cannot run."""

    def running() -> str | bool:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE datname = current_database()), count(*), "
            "current_setting('timescaledb.max_background_workers') "
            "FROM pg_stat_activity WHERE backend_type = 'TimescaleDB Background Worker Scheduler'"
        ).fetchone()
        assert row is not None
        ours, schedulers, slots = row
        if ours:
            return True
        conn.execute("SELECT _timescaledb_functions.start_background_workers()")
        return (
            f"no scheduler for this database: {schedulers} schedulers of other databases hold "
            f"the server's timescaledb.max_background_workers = {slots}"
        )

    poll_until(running, 30, "TimescaleDB's job scheduler of this database", interval=0.5)
