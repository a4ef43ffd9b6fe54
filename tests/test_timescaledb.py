"""The TimescaleDB flavour on the local server: the migrations, the continuous aggregates'
refresh over exactly the checkpointed windows, the retention policies and real Binance data.

All tests share one migrated database of this module's own: each uses its own symbols.
"""

from __future__ import annotations

import csv
import io
import random
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest

from cryptochart.core.database import Conn
from cryptochart.core.kline import Kline
from cryptochart.core.settings import Settings
from cryptochart.db.migrate import MigrationResult, detect_flavour, discover, migrate
from cryptochart.ingest.inserter import staging_rows, write_batch
from cryptochart.ingest.minute_job import MinuteJob
from tests.pipeline import DATA, rolled_up, stored_row
from tests.policy_jobs import set_jobs
from tests.test_schema import AGGREGATES, KLINE_COLUMNS, columns

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SECOND = timedelta(seconds=1)
MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)
BUCKETS = {
    "kline_1m": MINUTE,
    "kline_5m": timedelta(minutes=5),
    "kline_15m": timedelta(minutes=15),
    "kline_1h": timedelta(hours=1),
    "kline_1d": DAY,
}
CANDLE_COLUMNS = (
    "symbol, open_time, close_time, open, high, low, close, volume, quote_volume, trades, "
    "taker_buy_base_volume, taker_buy_quote_volume, seconds"
)
Candle = tuple[object, ...]


@pytest.fixture(scope="module")
def server(database_factory: Callable[[str], str]) -> str:
    """An empty database on the local server, which must offer TimescaleDB."""
    url = database_factory("timescaledb")
    with connect(url) as conn:
        if detect_flavour(conn) != "timescaledb":
            pytest.skip("the server does not offer TimescaleDB (run scripts/timescaledb.sh)")
    return url


@pytest.fixture(scope="module")
def migrations(server: str) -> tuple[MigrationResult, MigrationResult]:
    """The database migrated twice with the default retention; both results."""
    defaults = Settings()
    with connect(server) as conn:
        first = migrate(conn, defaults.retention_1s, defaults.retention_aggregates)
        second = migrate(conn, defaults.retention_1s, defaults.retention_aggregates)
    return first, second


@pytest.fixture
def url(server: str, migrations: tuple[MigrationResult, MigrationResult]) -> str:
    return server


def connect(url: str) -> Conn:
    return psycopg.connect(url, autocommit=True)


def test_migrations_build_the_timescaledb_flavour(
    url: str, migrations: tuple[MigrationResult, MigrationResult]
) -> None:
    first, second = migrations
    assert first.flavour == "timescaledb"
    assert first.applied == [f"{m.version}_{m.name}" for m in discover("timescaledb")]
    assert any(".timescaledb." in m.path.name for m in discover("timescaledb"))
    assert second.flavour == "timescaledb"
    assert second.applied == []
    with connect(url) as conn:
        dimensions = conn.execute(
            "SELECT column_name, time_interval FROM timescaledb_information.dimensions "
            "WHERE hypertable_schema = 'public' AND hypertable_name = 'kline_1s'"
        ).fetchall()
        aggregates = conn.execute(
            "SELECT view_name, materialized_only, view_definition "
            "FROM timescaledb_information.continuous_aggregates WHERE view_schema = 'public'"
        ).fetchall()
        assert columns(conn, "kline_1s") == KLINE_COLUMNS
        for relation in AGGREGATES:
            assert columns(conn, relation) == {**KLINE_COLUMNS, "seconds": "integer"}
    assert dimensions == [("open_time", timedelta(hours=6))]
    assert {str(name) for name, _, _ in aggregates} == set(AGGREGATES)
    assert all(only is True for _, only, _ in aggregates)
    # Hierarchical: each level is rolled up from the one below it.
    sources = dict(zip(AGGREGATES, ["kline_1s", *AGGREGATES[:-1]], strict=True))
    for name, _, definition in aggregates:
        assert f"FROM {sources[str(name)]}\n" in str(definition), name


def test_minute_job_refreshes_exactly_the_checkpointed_windows(url: str) -> None:
    symbols = ["REFAUSDT", "REFBUSDT"]
    start = floor(datetime.now(UTC), DAY) - DAY - 5 * MINUTE  # within the 1s retention
    klines = synthetic_klines(symbols, start, 600, seed=7)  # ten minutes across midnight
    late = klines.pop(130)  # REFAUSDT 23:57:10 arrives after its minute was aggregated
    window_a = (start + 2 * MINUTE, start + 7 * MINUTE)
    in_a: list[Kline] = []
    outside: list[Kline] = []
    for k in klines:
        (in_a if window_a[0] <= as_time(k.open_time) < window_a[1] else outside).append(k)
    job = MinuteJob(Settings())
    with connect(url) as conn:
        # Rows outside window A have no checkpoint yet: the job must leave their buckets empty.
        insert_klines(conn, outside)
        write_klines(conn, in_a)
        report = job.run_once(conn)
        assert {(w.symbol, w.start, w.end) for w in report.windows} == {
            (symbol, *window_a) for symbol in symbols
        }
        assert len(candles(conn, "kline_1m", symbols)) == 2 * 5
        for relation, bucket in BUCKETS.items():
            assert candles(conn, relation, symbols) == reference(in_a, bucket), relation

        checkpoint(conn, outside)
        job.run_once(conn)
        assert len(candles(conn, "kline_1m", symbols)) == 2 * 10
        assert candles(conn, "kline_1m", symbols)[2][-1] == 59  # REFAUSDT 23:57 without `late`
        for relation, bucket in BUCKETS.items():
            assert candles(conn, relation, symbols) == reference(klines, bucket), relation

        write_klines(conn, [late])
        job.run_once(conn)
        klines.append(late)
        assert candles(conn, "kline_1m", symbols)[2][-1] == 60
        for relation, bucket in BUCKETS.items():
            got = candles(conn, relation, symbols)
            assert len(got) == 2 * (10 if bucket == MINUTE else 2), relation  # across midnight
            assert got == reference(klines, bucket), relation


def test_retention_jobs_drop_old_chunks_and_aggregates(url: str) -> None:
    defaults = Settings()
    now = floor(datetime.now(UTC), MINUTE)
    ages = {"ancient": timedelta(days=500), "old": timedelta(days=30), "recent": timedelta(hours=1)}
    with connect(url) as conn:
        # This database's job scheduler would run them on its own clock at any moment (and a
        # columnstore job running beside run_job below deadlocked with it once).
        set_jobs(conn, "scheduled => false")
        for age in ages.values():
            minute = now - age
            insert_klines(conn, synthetic_klines(["RETAINUSDT"], minute, 5, seed=age.days))
            refresh(conn, "kline_1m", minute, minute + MINUTE)
        assert len(minutes_of(conn, "kline_1s", "RETAINUSDT")) == len(ages)
        jobs = conn.execute(
            "SELECT hypertable_name, job_id, config->>'drop_after' "
            "FROM timescaledb_information.jobs WHERE proc_name = 'policy_retention'"
        ).fetchall()
        policies = {str(relation): (job, keep) for relation, job, keep in jobs}
        assert {r: keep for r, (_, keep) in policies.items()} == {
            "kline_1s": defaults.retention_1s,
            **{r: defaults.retention_aggregates for r in AGGREGATES},
        }

        # Run now rather than on the job scheduler's clock.
        conn.execute("CALL run_job(%s)", (policies["kline_1s"][0],))
        expired = conn.execute(
            "SELECT count(*) FROM timescaledb_information.chunks "
            "WHERE hypertable_name = 'kline_1s' AND range_end <= now() - %s::interval",
            (defaults.retention_1s,),
        ).fetchone()
        assert expired == (0,)
        assert minutes_of(conn, "kline_1s", "RETAINUSDT") == [now - ages["recent"]]
        # Candles outlive their 1s klines.
        assert minutes_of(conn, "kline_1m", "RETAINUSDT") == sorted(now - a for a in ages.values())

        conn.execute("CALL run_job(%s)", (policies["kline_1m"][0],))
        assert minutes_of(conn, "kline_1m", "RETAINUSDT") == [
            now - ages["old"],
            now - ages["recent"],
        ]


def test_real_binance_seconds_roll_up_to_binance_minutes(url: str) -> None:
    with (DATA / "BTCUSDT-1s-2024-03-01.part01.first180rows.csv").open(newline="") as f:
        seconds = read_binance("BTCUSDT", f)
    with zipfile.ZipFile(DATA / "BTCUSDT-1m-2024-03-01.zip") as archive:
        (name,) = archive.namelist()
        minutes = read_binance("BTCUSDT", io.TextIOWrapper(archive.open(name), newline=""))[:3]
    # 2024 is older than the default 1s retention, which the minute job never aggregates past.
    job = MinuteJob(replace(Settings(), retention_1s="10 years", retention_aggregates="10 years"))
    with connect(url) as conn:
        write_klines(conn, seconds)
        job.run_once(conn)
        got = candles(conn, "kline_1m", ["BTCUSDT"])
    assert len(seconds) == 180
    assert len(got) == 3
    assert got == [(*row(k), 60) for k in minutes]


# --- helpers ------------------------------------------------------------------------------------


def refresh(conn: Conn, relation: str, start: datetime, end: datetime) -> None:
    conn.execute(
        "CALL refresh_continuous_aggregate(%s, %s::timestamptz, %s::timestamptz)",
        (relation, start, end),
    )


def write_klines(conn: Conn, klines: list[Kline]) -> None:
    """One batch through the inserter's own COPY, upsert and checkpoint SQL."""
    write_batch(conn, staging_rows(enumerate(klines)))


def checkpoint(conn: Conn, klines: list[Kline]) -> None:
    """Pending checkpoints naming ``klines``, as the inserter writes them with its rows."""
    for symbol in sorted({k.symbol for k in klines}):
        times = [as_time(k.open_time) for k in klines if k.symbol == symbol]
        conn.execute(
            "INSERT INTO ingest_checkpoint (symbol, first_open_time, last_open_time, rows) "
            "VALUES (%s, %s, %s, %s)",
            (symbol, min(times), max(times), len(times)),
        )


def insert_klines(conn: Conn, klines: list[Kline]) -> None:
    """One plain INSERT for all rows, decimals sent as their exchange strings."""
    rows = [row(k) for k in klines]
    arrays = [list(column) for column in zip(*rows, strict=True)]
    for i in range(3, 12):
        arrays[i] = [str(v) for v in arrays[i]]
    conn.execute(
        "INSERT INTO kline_1s SELECT * FROM unnest(%s::text[], %s::timestamptz[], "
        "%s::timestamptz[], %s::numeric[], %s::numeric[], %s::numeric[], %s::numeric[], "
        "%s::numeric[], %s::numeric[], %s::bigint[], %s::numeric[], %s::numeric[])",
        arrays,
    )


def candles(conn: Conn, relation: str, symbols: list[str]) -> list[Candle]:
    return conn.execute(
        f"SELECT {CANDLE_COLUMNS} FROM {relation} WHERE symbol = ANY(%s) "
        "ORDER BY symbol, open_time",
        (symbols,),
    ).fetchall()


def minutes_of(conn: Conn, relation: str, symbol: str) -> list[datetime]:
    rows = conn.execute(
        f"SELECT DISTINCT date_trunc('minute', open_time) FROM {relation} WHERE symbol = %s "
        "ORDER BY 1",
        (symbol,),
    ).fetchall()
    return [t for (t,) in rows if isinstance(t, datetime)]


def reference(
    klines: Iterable[Kline], bucket: timedelta, window: tuple[datetime, datetime] | None = None
) -> list[Candle]:
    """The candles of ``bucket`` rolled up in Python: first open, last close, max, min, sums."""
    groups: dict[tuple[str, datetime], list[Kline]] = {}
    for k in sorted(klines, key=lambda k: (k.symbol, k.open_time)):
        groups.setdefault((k.symbol, floor(as_time(k.open_time), bucket)), []).append(k)
    return [
        (symbol, start, as_time(max(k.close_time for k in ks)), *rolled_up(ks)[1:], len(ks))
        for (symbol, start), ks in groups.items()
        if window is None or window[0] <= start < window[1]
    ]


def synthetic_klines(symbols: list[str], start: datetime, count: int, seed: int) -> list[Kline]:
    """``count`` consecutive 1s klines per symbol from ``start``, prices with 2 decimals and
    volumes with 8, as an exchange sends them."""
    rng = random.Random(seed)
    out = []
    for symbol in symbols:
        price = Decimal(rng.randint(1_000_000, 9_000_000)) / 100
        for i in range(count):
            open_ms = int((start + i * SECOND - EPOCH) / timedelta(milliseconds=1))
            close = price + Decimal(rng.randint(-500, 500)) / 100
            volume = Decimal(rng.randint(0, 10**9)) / 10**8
            out.append(
                Kline(
                    symbol=symbol,
                    open_time=open_ms,
                    close_time=open_ms + 999,
                    open=price,
                    high=max(price, close) + Decimal(rng.randint(0, 300)) / 100,
                    low=min(price, close) - Decimal(rng.randint(0, 300)) / 100,
                    close=close,
                    volume=volume,
                    quote_volume=(volume * close).quantize(Decimal("1E-8")),
                    trades=rng.randint(0, 400),
                    taker_buy_base_volume=(volume / 3).quantize(Decimal("1E-8")),
                    taker_buy_quote_volume=(volume * close / 3).quantize(Decimal("1E-8")),
                )
            )
            price = close
    return out


def read_binance(symbol: str, lines: Iterable[str]) -> list[Kline]:
    """Rows of a data.binance.vision kline CSV (12 headerless columns, times in ms)."""
    return [
        Kline(
            symbol=symbol,
            open_time=int(r[0]),
            open=Decimal(r[1]),
            high=Decimal(r[2]),
            low=Decimal(r[3]),
            close=Decimal(r[4]),
            volume=Decimal(r[5]),
            close_time=int(r[6]),
            quote_volume=Decimal(r[7]),
            trades=int(r[8]),
            taker_buy_base_volume=Decimal(r[9]),
            taker_buy_quote_volume=Decimal(r[10]),
        )
        for r in csv.reader(lines)
    ]


def row(k: Kline) -> tuple[object, ...]:
    """A kline as a kline_1s row, in column order."""
    return stored_row(k)


def as_time(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def floor(t: datetime, bucket: timedelta) -> datetime:
    return EPOCH + (t - EPOCH) // bucket * bucket
