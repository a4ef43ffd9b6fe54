"""B1: Kafka → kline_1s throughput of our inserter, next to a per-row INSERT loop (the naive
design) and to a raw COPY into an index-free copy of the table (the database's ceiling).

Our inserter runs as `cryptochart insert`, a child process with the shipped settings, on a topic
filled beforehand; it is timed from its first committed batch (so the consumer-group join is
left out) until the checkpoints count every row. Raw COPY and ours alternate, and the median
of the rounds is reported.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from confluent_kafka import Consumer

from bench import klines as sim
from bench.processes import spawn
from bench.profiling import StageProfile
from bench.results import Outcome, RunOptions, rate, ratio
from bench.scratch import scratch_settings
from cryptochart.core.database import Conn
from cryptochart.core.kline import Kline, decode
from cryptochart.core.settings import Settings

TARGET_RATE = 150_000
TARGET_VS_ROW = 10.0
TARGET_VS_COPY = 0.7
SYMBOLS = 1_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


KLINE_FIELDS = (  # kline_1s's columns (db/migrations/0002_kline_1s.*.sql)
    "symbol",
    "open_time",
    "close_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "quote_volume",
    "trades",
    "taker_buy_base_volume",
    "taker_buy_quote_volume",
)

_COLUMNS = ", ".join(KLINE_FIELDS)
ROW_UPSERT = f"""
INSERT INTO kline_1s ({_COLUMNS}) VALUES (
    %s, timestamptz 'epoch' + %s * interval '1 millisecond',
    timestamptz 'epoch' + %s * interval '1 millisecond', %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (symbol, open_time) DO UPDATE SET
    {", ".join(f"{f} = EXCLUDED.{f}" for f in KLINE_FIELDS[2:])}
"""
RAW_TYPES = ("text", "timestamptz", "timestamptz", *["numeric"] * 6, "int8", "numeric", "numeric")


def _values(k: Kline) -> tuple[object, ...]:
    return (
        k.symbol,
        k.open_time,
        k.close_time,
        k.open,
        k.high,
        k.low,
        k.close,
        k.volume,
        k.quote_volume,
        k.trades,
        k.taker_buy_base_volume,
        k.taker_buy_quote_volume,
    )


def _at(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def per_row_insert(settings: Settings, rows: int, commit_each: bool) -> float:
    """Consume ``rows`` klines and upsert each with its own INSERT; return rows/s."""
    group = f"{settings.inserter_group}.per-row.{int(commit_each)}"
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([settings.klines_topic])
    done = 0
    started = 0.0
    with psycopg.connect(settings.database_url, autocommit=commit_each) as conn:
        while done < rows:
            messages = consumer.consume(num_messages=min(500, rows - done), timeout=1.0)
            if messages and not started:
                started = time.perf_counter()
            for msg in messages:
                if msg.error() is None:
                    conn.execute(ROW_UPSERT, _values(decode(msg.value() or b"")))
                    done += 1
            if not commit_each and messages:
                conn.commit()
                consumer.commit(asynchronous=False)
            elif messages:
                consumer.commit(asynchronous=False)
    elapsed = time.perf_counter() - started
    consumer.close()
    return done / elapsed


def raw_copy(settings: Settings, rows: Sequence[tuple[object, ...]]) -> float:
    """One binary COPY of prepared rows into an index-free, unpartitioned kline_1s; rows/s."""
    with psycopg.connect(settings.database_url) as conn:
        conn.execute("DROP TABLE IF EXISTS kline_1s_raw")
        conn.execute("CREATE TABLE kline_1s_raw (LIKE kline_1s)")
        conn.commit()
        started = time.perf_counter()
        with (
            conn.cursor() as cur,
            cur.copy(f"COPY kline_1s_raw ({_COLUMNS}) FROM STDIN BINARY") as copy,
        ):
            copy.set_types(RAW_TYPES)
            for row in rows:
                copy.write_row(row)
        conn.commit()
        return len(rows) / (time.perf_counter() - started)


def _written(conn: Conn) -> int:
    row = conn.execute("SELECT coalesce(sum(rows), 0) FROM ingest_checkpoint").fetchone()
    return int(str(row[0])) if row else 0


def our_inserter(
    settings: Settings, total: int, logs: Path, label: str, profile: Path | None = None
) -> float:
    """Run `cryptochart insert` on the filled topic until all ``total`` rows are in; rows/s."""
    ours = replace(settings, inserter_group=f"{settings.inserter_group}.{label}")
    stage = spawn(ours, f"inserter-{label}", ["insert"], logs)
    try:
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            first = written = 0
            started = 0.0
            deadline = time.monotonic() + 300
            while written < total:
                if not stage.alive() or time.monotonic() > deadline:
                    raise RuntimeError(f"inserter stopped at {written}/{total}:\n{stage.tail()}")
                time.sleep(0.02)
                written = _written(conn)
                if written and not started:
                    started, first = time.perf_counter(), written
                    # about the measured window: the rows left at the ceiling's pace, halved
                    recording = StageProfile(profile, f"b1-{label}", stage.pid, total / 300_000)
            elapsed = time.perf_counter() - started
            recording.report()
            count = conn.execute("SELECT count(*) FROM kline_1s").fetchone()
            if count is None or int(str(count[0])) != total:
                raise RuntimeError(f"kline_1s holds {count} rows, expected {total}")
    finally:
        stage.stop()
    return (total - first) / elapsed


def _empty(settings: Settings) -> None:
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute("TRUNCATE kline_1s, ingest_checkpoint")
        conn.execute("DROP TABLE IF EXISTS kline_1s_raw")
        conn.execute("VACUUM ANALYZE kline_1s")


def run(base: Settings, options: RunOptions) -> Outcome:
    seconds, per_row, rounds = (50, 2_000, 1) if options.quick else (400, 20_000, 3)
    logs = options.logs
    out = Outcome("B1", "insert throughput, Kafka → kline_1s")
    names = sim.symbols(SYMBOLS)
    klines = sim.history(names, seconds)
    copy_rows = [(k.symbol, _at(k.open_time), _at(k.close_time), *_values(k)[3:]) for k in klines]
    with scratch_settings(base, options.flavour, "b1", symbols=names) as settings:
        produced = sim.fill_topic(settings, klines)
        row_each = per_row_insert(settings, per_row, commit_each=True)
        _empty(settings)
        row_batch = per_row_insert(settings, per_row, commit_each=False)
        ours: list[float] = []
        raw: list[float] = []
        for i in range(rounds):
            _empty(settings)
            raw.append(raw_copy(settings, copy_rows))
            _empty(settings)
            profile = options.profile if i == 0 else None
            ours.append(our_inserter(settings, len(klines), logs, f"round{i}", profile))
    mine, ceiling = statistics.median(ours), statistics.median(raw)
    out.add(
        f"our inserter, {len(klines):,} klines of {SYMBOLS:,} symbols",
        rate(mine),
        f"≥ {TARGET_RATE:,} rows/s",
        mine >= TARGET_RATE,
        value=mine,
        better="higher",
    )
    out.add(
        f"baseline: per-row INSERT, commit per row ({per_row:,} rows)",
        rate(row_each),
        value=row_each,
        better="higher",
    )
    out.add(
        f"baseline: per-row INSERT, commit per 500 ({per_row:,} rows)",
        rate(row_batch),
        value=row_batch,
        better="higher",
    )
    out.add(
        "ours ÷ per-row INSERT (commit per row)",
        ratio(mine / row_each),
        f"≥ {TARGET_VS_ROW:.0f}x",
        mine / row_each >= TARGET_VS_ROW,
    )
    out.add("ours ÷ per-row INSERT (commit per 500)", ratio(mine / row_batch))
    out.add(
        "baseline: raw COPY into an index-free copy of kline_1s",
        rate(ceiling),
        value=ceiling,
        better="higher",
    )
    out.add(
        "ours ÷ raw COPY",
        ratio(mine / ceiling),
        f"≥ {TARGET_VS_COPY}x",
        mine / ceiling >= TARGET_VS_COPY,
    )
    out.note(
        "rounds (ours / raw COPY, rows/s): "
        + "; ".join(f"{a:,.0f} / {b:,.0f}" for a, b in zip(ours, raw, strict=True))
    )
    out.note(f"topic filled by KlineProducer at {produced:,.0f} klines/s (not a target)")
    return out
