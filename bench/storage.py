"""Storage: bytes per stored 1s kline on plain PostgreSQL, on TimescaleDB before and after its
columnstore compression, and (a side experiment, not the product's schema) with prices and
quantities as bigint ticks and lot steps compressed the same way.

The same simulated klines go through the inserter's own SQL (``write_batch``) into a fresh
database of each flavour. A size is heap + TOAST + indexes of every partition or chunk holding
rows, compressed chunks included. Real Binance klines are too few to fill a page-sized chunk, so
for them (and next to them for the simulated ones) the payload is compared too: the bytes of the
stored rows or compressed batches and their line pointers, pages and indexes left out.

Run alone with ``python -m bench.storage [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from bench import klines as sim
from bench.results import Outcome, RunOptions, ratio
from bench.scratch import RUN_TOKEN
from cryptochart.core.database import Conn, with_dbname
from cryptochart.core.kline import Kline
from cryptochart.core.settings import Settings
from cryptochart.db.migrate import Flavour, migrate
from cryptochart.db.partitions import maintain
from cryptochart.ingest.inserter import staging_rows, write_batch
from cryptochart.ingest.sources.replay import ReplaySource

TARGET = 10.0  # times smaller than plain PostgreSQL, once compressed
SYMBOLS = 12  # the product's default symbol list
SECONDS, QUICK_SECONDS = 40_000, 4_000  # 480,000 and 48,000 klines
BINANCE = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "binance"
REAL_1S = ("BTCUSDT-1s-2024-03-01.part01.first180rows.csv",)
REAL_1M = tuple(f"{s}-1m-2024-03-0{d}.zip" for s in ("BTCUSDT", "ETHUSDT") for d in (1, 2, 3))

# The side experiment: each symbol's own decimal grid per kind of column, found from its data
# (the smallest power of ten that makes every value an integer), and the klines as integers on it.
TICKS_SQL = """
CREATE TABLE kline_scale AS
SELECT *, 10::numeric ^ price AS p, 10::numeric ^ lot AS l, 10::numeric ^ quote AS q
FROM (SELECT symbol,
             max(greatest(min_scale(open), min_scale(high), min_scale(low), min_scale(close)))
                 AS price,
             max(greatest(min_scale(volume), min_scale(taker_buy_base_volume))) AS lot,
             max(greatest(min_scale(quote_volume), min_scale(taker_buy_quote_volume))) AS quote
      FROM kline_1s GROUP BY symbol) AS decimals;

CREATE TABLE kline_1s_ticks (
    symbol text NOT NULL, open_time timestamptz NOT NULL, close_time timestamptz NOT NULL,
    open bigint NOT NULL, high bigint NOT NULL, low bigint NOT NULL, close bigint NOT NULL,
    volume bigint NOT NULL, quote_volume bigint NOT NULL, trades bigint NOT NULL,
    taker_buy_base_volume bigint NOT NULL, taker_buy_quote_volume bigint NOT NULL,
    PRIMARY KEY (symbol, open_time)
);
SELECT create_hypertable('kline_1s_ticks', 'open_time', chunk_time_interval => INTERVAL '6 hours');
ALTER TABLE kline_1s_ticks SET (timescaledb.enable_columnstore = true,
    timescaledb.segmentby = 'symbol', timescaledb.orderby = 'open_time');

INSERT INTO kline_1s_ticks
SELECT k.symbol, k.open_time, k.close_time, k.open * s.p, k.high * s.p, k.low * s.p,
       k.close * s.p, k.volume * s.l, k.quote_volume * s.q, k.trades,
       k.taker_buy_base_volume * s.l, k.taker_buy_quote_volume * s.q
FROM kline_1s k JOIN kline_scale s USING (symbol);
"""

# Rows whose integers do not give back the exact decimals (or are missing): must be none.
TICKS_INEXACT = """
SELECT count(*) FROM kline_1s k JOIN kline_scale s USING (symbol)
LEFT JOIN kline_1s_ticks t USING (symbol, open_time)
WHERE t.symbol IS NULL OR k.close_time <> t.close_time OR k.trades <> t.trades
   OR (k.open, k.high, k.low, k.close) <> (t.open / s.p, t.high / s.p, t.low / s.p, t.close / s.p)
   OR (k.volume, k.taker_buy_base_volume) <> (t.volume / s.l, t.taker_buy_base_volume / s.l)
   OR (k.quote_volume, k.taker_buy_quote_volume)
      <> (t.quote_volume / s.q, t.taker_buy_quote_volume / s.q)
"""


@dataclass(frozen=True)
class Size:
    """What one storage took for ``rows`` klines: on disk, and the payload alone."""

    rows: int
    disk: int  # heap + TOAST + indexes of the partitions or chunks holding rows
    payload: int  # stored rows (or compressed batches) and their line pointers

    @property
    def per_row(self) -> float:
        return self.disk / self.rows

    @property
    def payload_per_row(self) -> float:
        return self.payload / self.rows


@dataclass
class Storage:
    """Every figure of one data set."""

    name: str
    rows: int
    plain: Size | None = None
    rowstore: Size | None = None
    columnstore: Size | None = None
    ticks: Size | None = None
    notes: list[str] = field(default_factory=list)


def simulated_klines(seconds: int) -> list[Kline]:
    """``seconds`` of the default symbols' simulated 1s klines, ending an hour ago."""
    start_ms = (int(time.time()) - seconds - 3600) // 60 * 60_000
    return sim.history(sim.symbols(SYMBOLS), seconds, start_ms)


def binance_klines(names: Sequence[str]) -> list[Kline]:
    """Real Binance klines from ``../shared/data/binance`` (SOURCE.md there), read as replayed."""

    async def read(name: str) -> list[Kline]:
        source = ReplaySource(BINANCE / name, speed=None)
        return [k async for k in source.stream() if isinstance(k, Kline)]

    return [k for name in names for k in asyncio.run(read(name))]


@contextmanager
def database(base: Settings, label: str, flavour: Flavour) -> Iterator[Conn]:
    """A fresh database of ``flavour`` that keeps 2024 data and runs no policy job meanwhile
    (TimescaleDB's scheduler would compress or drop chunks under the measurement); dropped after."""
    name = f"cc_bench_{RUN_TOKEN}_storage_{label}"
    with psycopg.connect(base.database_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        with psycopg.connect(with_dbname(base.database_url, name), autocommit=True) as conn:
            migrate(conn, "100 years", "100 years", flavour, use_partman=base.use_partman)
            if flavour == "postgres":
                maintain(conn)
            else:
                conn.execute(
                    "SELECT alter_job(job_id, scheduled => false) "
                    "FROM timescaledb_information.jobs WHERE hypertable_name IS NOT NULL"
                )
            yield conn
    finally:
        with psycopg.connect(base.database_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def fill(conn: Conn, klines: Sequence[Kline], batch: int) -> None:
    """Through the inserter's own COPY + upsert, in its batch size."""
    for i in range(0, len(klines), batch):
        write_batch(conn, staging_rows(enumerate(klines[i : i + batch])))


def _one(conn: Conn, query: str, params: Sequence[object] = ()) -> int:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return int(str(row[0] or 0))


def plain_size(conn: Conn) -> Size:
    """kline_1s on plain PostgreSQL: its partitions that hold rows (premade empty ones left out)."""
    leaves = [
        str(r[0])
        for r in conn.execute(
            "SELECT relid::regclass::text FROM pg_partition_tree('kline_1s') "
            "WHERE isleaf AND pg_relation_size(relid) > 0"
        ).fetchall()
    ]
    disk = sum(_one(conn, "SELECT pg_total_relation_size(%s::regclass)", (r,)) for r in leaves)
    payload = _one(conn, "SELECT sum(pg_column_size(k.*) + 4) FROM kline_1s k")
    return Size(_one(conn, "SELECT count(*) FROM kline_1s"), disk, payload)


def chunks_of(conn: Conn, hypertable: str) -> list[tuple[str, str | None]]:
    """Each chunk of ``hypertable`` and the relation holding its compressed batches, if any."""
    rows = conn.execute(
        """SELECT c.oid::regclass::text, z.oid::regclass::text
           FROM _timescaledb_catalog.chunk ch
           JOIN _timescaledb_catalog.hypertable h ON h.id = ch.hypertable_id
           JOIN pg_class c ON c.oid = format('%%I.%%I', ch.schema_name, ch.table_name)::regclass
           LEFT JOIN _timescaledb_catalog.chunk zc ON zc.id = ch.compressed_chunk_id
           LEFT JOIN pg_class z ON z.relname = zc.table_name
               AND z.relnamespace = zc.schema_name::regnamespace
           WHERE h.schema_name = 'public' AND h.table_name = %s""",
        (hypertable,),
    ).fetchall()
    return [(str(c), None if z is None else str(z)) for c, z in rows]


def timescaledb_size(conn: Conn, hypertable: str) -> Size:
    """A hypertable's chunks: rowstore heaps, TOAST and indexes, and the compressed chunks."""
    disk = payload = 0
    for chunk, compressed in chunks_of(conn, hypertable):
        disk += _one(conn, "SELECT pg_total_relation_size(%s::regclass)", (chunk,))
        payload += _one(conn, f"SELECT sum(pg_column_size(k.*) + 4) FROM ONLY {chunk} k")
        if compressed is not None:
            disk += _one(conn, "SELECT pg_total_relation_size(%s::regclass)", (compressed,))
            payload += _one(conn, f"SELECT sum(pg_column_size(z.*) + 4) FROM {compressed} z")
    return Size(_one(conn, f"SELECT count(*) FROM {hypertable}"), disk, payload)


def digest(conn: Conn) -> tuple[int, int]:
    """Row count and a sum of row hashes: the same before and after compression, or it lost data."""
    row = conn.execute("SELECT count(*), sum(hashtext(k::text)) FROM kline_1s k").fetchone()
    assert row is not None
    return int(str(row[0])), int(str(row[1] or 0))


def column_bytes(conn: Conn, hypertable: str) -> str:
    """Compressed bytes per kline of each column, largest first: where the size goes."""
    totals: dict[str, int] = {}
    rows = 0
    for _, compressed in chunks_of(conn, hypertable):
        if compressed is None:
            continue
        names = [
            str(r[0])
            for r in conn.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
                "AND NOT attisdropped AND attname NOT LIKE '\\_ts\\_meta\\_%%'",
                (compressed,),
            ).fetchall()
        ]
        sums = sql.SQL(", ").join(
            sql.SQL("sum(pg_column_size({}))").format(sql.Identifier(n)) for n in names
        )
        query = sql.SQL("SELECT {}, sum(_ts_meta_count) FROM {}").format(sums, sql.SQL(compressed))
        row = conn.execute(query).fetchone()
        assert row is not None
        rows += int(str(row[-1]))
        for name, value in zip(names, row[:-1], strict=True):
            totals[name] = totals.get(name, 0) + int(str(value or 0))
    ranked = sorted(totals.items(), key=lambda item: -item[1])
    return ", ".join(f"{name} {value / rows:.2f}" for name, value in ranked if value / rows >= 0.05)


def compress(conn: Conn, hypertable: str) -> None:
    conn.execute("SELECT compress_chunk(c) FROM show_chunks(%s) c", (hypertable,))


def measure_set(base: Settings, label: str, name: str, klines: Sequence[Kline]) -> Storage:
    """One data set on both flavours, before and after compression, and as ticks."""
    found = Storage(name, len(klines))
    batch = base.insert_batch_rows
    with database(base, f"{label}_pg", "postgres") as conn:
        fill(conn, klines, batch)
        found.plain = plain_size(conn)
    with database(base, f"{label}_ts", "timescaledb") as conn:
        fill(conn, klines, batch)
        found.rowstore = timescaledb_size(conn, "kline_1s")
        before = digest(conn)
        conn.execute(TICKS_SQL)
        inexact = _one(conn, TICKS_INEXACT)
        if inexact:
            raise RuntimeError(f"{name}: {inexact} klines do not survive as integers exactly")
        compress(conn, "kline_1s")
        compress(conn, "kline_1s_ticks")
        if digest(conn) != before:
            raise RuntimeError(f"{name}: kline_1s changed under compression")
        found.columnstore = timescaledb_size(conn, "kline_1s")
        found.ticks = timescaledb_size(conn, "kline_1s_ticks")
        for kind, hypertable in (("numeric", "kline_1s"), ("ticks", "kline_1s_ticks")):
            where = column_bytes(conn, hypertable)
            found.notes.append(f"{name}, {kind} columnstore, B per kline by column: {where}")
        scales = conn.execute(
            "SELECT string_agg(format('%s %s/%s/%s', symbol, price, lot, quote), ', ' "
            "ORDER BY symbol) FROM kline_scale"
        ).fetchone()
        grids = scales[0] if scales else ""
        found.notes.append(f"{name}: ticks' decimals of price/quantity/quote: {grids}")
    for size in (found.plain, found.rowstore, found.columnstore, found.ticks):
        assert size is not None and size.rows == len(klines), (name, size)
    return found


def measure(base: Settings, quick: bool) -> list[Storage]:
    """The simulated data set (the headline) and the real Binance ones."""
    seconds = QUICK_SECONDS if quick else SECONDS
    simulated = simulated_klines(seconds)
    seconds_1s, minutes_1m = binance_klines(REAL_1S), binance_klines(REAL_1M)
    return [
        measure_set(base, "sim", f"{len(simulated):,} simulated 1s klines", simulated),
        measure_set(base, "real1s", f"{len(seconds_1s):,} real Binance 1s klines", seconds_1s),
        measure_set(base, "real1m", f"{len(minutes_1m):,} real Binance 1m klines", minutes_1m),
    ]


def _bytes(value: float) -> str:
    return f"{value:,.1f} B"


def outcome(found: Sequence[Storage]) -> Outcome:
    out = Outcome("B7", "storage: bytes per stored 1s kline")
    target = f"≥ {TARGET:g}x smaller than plain"
    headline = found[0]
    plain = headline.plain
    assert plain and headline.rowstore and headline.columnstore and headline.ticks
    out.add(f"plain PostgreSQL, {headline.name}", _bytes(plain.per_row))
    out.add("TimescaleDB rowstore (before compression)", _bytes(headline.rowstore.per_row))
    for label, size in (
        ("TimescaleDB columnstore (numeric, the product)", headline.columnstore),
        ("side experiment: bigint ticks and lots, columnstore", headline.ticks),
    ):
        smaller = plain.per_row / size.per_row
        result = f"{_bytes(size.per_row)} ({ratio(smaller)} smaller)"
        out.add(label, result, target, smaller >= TARGET)
    for data in found:
        assert data.plain and data.columnstore and data.ticks
        plain_payload = data.plain.payload_per_row
        numeric = plain_payload / data.columnstore.payload_per_row
        ticks = plain_payload / data.ticks.payload_per_row
        out.add(
            f"payload only, {data.name}",
            f"plain {_bytes(plain_payload)}, columnstore {ratio(numeric)} smaller, "
            f"ticks {ratio(ticks)}",
        )
    out.note(
        "size = heap + TOAST + indexes of the partitions/chunks holding rows (compressed chunks "
        "included); payload = stored rows or compressed batches + line pointers, no pages or "
        "indexes (the fair figure for the few real klines, whose chunks are mostly empty pages)"
    )
    out.note(
        "columnstore: segment by symbol, order by open_time, every chunk compressed with "
        "compress_chunk; ticks: each symbol's decimals per kind of column found from its data, "
        "every value checked to give back the exact decimal"
    )
    for data in found:
        out.notes.extend(data.notes)
    return out


def run(settings: Settings, options: RunOptions) -> Outcome:
    """Measures both flavours itself (one data set, every storage): run it once, not per flavour."""
    return outcome(measure(settings, options.quick))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.storage", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_SECONDS:,} s, not {SECONDS:,}"
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    out = outcome(measure(Settings.from_env(), args.quick))
    print(out.title)
    for f in out.figures:
        met = "" if f.met is None else ("  met" if f.met else "  NOT met")
        print(f"  {f.what}: {f.result}" + (f"  [target {f.target}]{met}" if f.target else ""))
    for line in out.notes:
        print(f"  - {line}")
    print(f"({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
