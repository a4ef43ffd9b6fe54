"""Test helpers that drive the real pipeline stages against the session's services."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg

from cryptochart.core.kline import Kline, candle, row
from cryptochart.core.settings import Settings
from cryptochart.ingest.inserter import KlineInserter
from cryptochart.ingest.producer import KlineProducer
from cryptochart.ingest.sources.binance.messages import kline_from_csv_row

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "binance"

CANDLE_COLUMNS = (
    "open_time, close_time, open, high, low, close, volume, quote_volume, trades, "
    "taker_buy_base_volume, taker_buy_quote_volume"
)


def wait_for(check: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
    """Poll ``check`` until true; fail the test naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.05)


def produce(settings: Settings, klines: Iterable[Kline], source: str = "test") -> int:
    producer = KlineProducer(settings, source)
    count = 0
    for kline in klines:
        producer.publish(kline)
        count += 1
    assert producer.flush(60) == 0
    assert producer.counts["failed"] == 0
    return count


@contextmanager
def running_inserter(settings: Settings) -> Iterator[KlineInserter]:
    inserter = KlineInserter(settings)
    thread = threading.Thread(target=inserter.run, name="inserter", daemon=True)
    thread.start()
    try:
        yield inserter
    finally:
        inserter.stop.set()
        thread.join(30)


def count_rows(settings: Settings, relation: str, symbols: Iterable[str]) -> int:
    with psycopg.connect(settings.database_url) as conn:
        row = conn.execute(
            f"SELECT count(*) FROM {relation} WHERE symbol = ANY(%s)", (list(symbols),)
        ).fetchone()
    return int(str(row[0])) if row else 0


def wait_rows(
    settings: Settings, symbols: Iterable[str], expected: int, timeout: float = 60
) -> None:
    wanted = list(symbols)
    wait_for(
        lambda: count_rows(settings, "kline_1s", wanted) >= expected,
        timeout,
        f"{expected} kline_1s rows of {wanted}",
    )


def candles(settings: Settings, relation: str, symbol: str) -> list[tuple[object, ...]]:
    """Rows of a kline relation as (open_ms, close_ms, decimals..., trades, ...), in time order."""
    with psycopg.connect(settings.database_url) as conn:
        return conn.execute(
            f"""SELECT (extract(epoch FROM open_time) * 1000)::bigint,
                       (extract(epoch FROM close_time) * 1000)::bigint,
                       open, high, low, close, volume, quote_volume, trades,
                       taker_buy_base_volume, taker_buy_quote_volume
                FROM {relation} WHERE symbol = %s ORDER BY open_time""",
            (symbol,),
        ).fetchall()


def as_time(ms: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


def stored_row(k: Kline) -> tuple[object, ...]:
    """A kline as a kline_1s row (times as timestamptz values), in column order."""
    symbol, open_time, close_time, *rest = row(k)
    assert isinstance(open_time, int) and isinstance(close_time, int)
    return (symbol, as_time(open_time), as_time(close_time), *rest)


def rolled_up(ks: list[Kline]) -> tuple[object, ...]:
    """The plain Python reference of the aggregation rule for klines of one bucket, in time
    order: (close_time ms, open, high, low, close, volume, quote_volume, trades, taker sums)."""
    return (
        max(k.close_time for k in ks),
        ks[0].open,
        max(k.high for k in ks),
        min(k.low for k in ks),
        ks[-1].close,
        sum(k.volume for k in ks),
        sum(k.quote_volume for k in ks),
        sum(k.trades for k in ks),
        sum(k.taker_buy_base_volume for k in ks),
        sum(k.taker_buy_quote_volume for k in ks),
    )


def as_candle(k: Kline) -> tuple[object, ...]:
    return candle(k)


def read_dump(name: str, symbol: str | None = None) -> list[Kline]:
    """Klines of a Binance dump in ``shared/data/binance`` (.csv or .zip of one CSV)."""
    path = DATA / name
    symbol = symbol or name.split("-", 1)[0]
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as zf:
            text = zf.read(zf.namelist()[0]).decode()
    else:
        text = path.read_text()
    return [kline_from_csv_row(symbol, row) for row in csv.reader(io.StringIO(text)) if row]


def renamed(klines: Iterable[Kline], symbol: str) -> list[Kline]:
    import msgspec

    return [msgspec.structs.replace(k, symbol=symbol) for k in klines]


def spawn(settings: Settings, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "cryptochart.cli", *args],
        env=settings.as_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def dec(value: str) -> Decimal:
    return Decimal(value)
