"""Replays of Binance's CSV dumps (plain and zipped) and of recorded combined-stream messages."""

from __future__ import annotations

import csv
import shutil
import time
from decimal import Decimal
from pathlib import Path

import pytest

from cryptochart.core.kline import Kline
from cryptochart.ingest.sources.base import Rejected
from cryptochart.ingest.sources.replay import ReplaySource
from tests.fakes.binance import combined_stream_message
from tests.fakes.market import in_progress, kline_at
from tests.pipeline import DATA

DUMP_1S = DATA / "BTCUSDT-1s-2024-03-01.part01.first180rows.csv"
START = 1_709_251_200_000


async def replayed(source: ReplaySource, limit: int | None = None) -> list[Kline | Rejected]:
    items: list[Kline | Rejected] = []
    async for item in source.stream():
        items.append(item)
        if limit is not None and len(items) == limit:
            break
    return items


async def test_the_1s_dump_replays_every_row_exactly() -> None:
    items = await replayed(ReplaySource(DUMP_1S, speed=None))
    with DUMP_1S.open(newline="") as file:
        rows = list(csv.reader(file))
    assert len(items) == len(rows) == 180
    for item, row in zip(items, rows, strict=True):
        assert isinstance(item, Kline)
        assert item.symbol == "BTCUSDT" and item.closed
        assert item.open_time == int(row[0]) and item.close_time == int(row[6])
        decimals = (
            item.open,
            item.high,
            item.low,
            item.close,
            item.volume,
            item.quote_volume,
            item.taker_buy_base_volume,
            item.taker_buy_quote_volume,
        )
        # Same digits and same exponent as the dump ("f" only avoids the 0E-8 spelling of zero).
        assert [f"{d:f}" for d in decimals] == [row[i] for i in (1, 2, 3, 4, 5, 7, 9, 10)]
        assert item.trades == int(row[8])
    first = items[0]
    assert isinstance(first, Kline)
    assert first.open == Decimal("61130.99000000") and first.close == Decimal("61141.09000000")


async def test_speed_keeps_the_recorded_spacing() -> None:
    started = time.monotonic()
    items = await replayed(ReplaySource(DUMP_1S, speed=100.0), limit=11)  # 10 s of data
    elapsed = time.monotonic() - started
    # Paced, not flat out: 10 recorded seconds at 100x take at least 0.1 s (less a tick).
    assert elapsed >= 0.09, f"{elapsed:.3f}s: the recorded spacing was not kept"
    assert [k.open_time for k in items if isinstance(k, Kline)][-1] == START + 10_000


async def test_a_zipped_dump_and_a_directory_of_them_replay_in_time_order(tmp_path: Path) -> None:
    btc = await replayed(ReplaySource(DATA / "BTCUSDT-1m-2024-03-01.zip", speed=0))
    assert len(btc) == 1440
    assert all(isinstance(k, Kline) and k.close_time == k.open_time + 59_999 for k in btc)

    for name in ("BTCUSDT-1m-2024-03-01.zip", "ETHUSDT-1m-2024-03-01.zip"):
        shutil.copy(DATA / name, tmp_path / name)
    both = await replayed(ReplaySource(tmp_path, speed=None))
    klines = [k for k in both if isinstance(k, Kline)]
    assert len(klines) == 2880
    assert [k.open_time for k in klines] == sorted(k.open_time for k in klines)
    assert {k.symbol for k in klines[:2]} == {"BTCUSDT", "ETHUSDT"}


async def test_bad_rows_are_rejected_and_a_header_is_skipped(tmp_path: Path) -> None:
    lines = DUMP_1S.read_text().splitlines()
    header = "open_time,open,high,low,close,volume,close_time,quote_volume,count,x,y,ignore"
    broken = lines[1].replace("61141.10000000", "61100.00000000", 1)  # high below low
    dump = tmp_path / "BTCUSDT-1s-2024-03-01.csv"
    dump.write_text("\n".join([header, lines[0], broken, "garbage", lines[2]]) + "\n")
    items = await replayed(ReplaySource(dump, speed=None))
    assert [type(i).__name__ for i in items] == ["Kline", "Rejected", "Rejected", "Kline"]
    kinds = [i.kind for i in items if isinstance(i, Rejected)]
    assert kinds == ["high_below_low", "bad_row"]


async def test_recorded_stream_messages_replay_with_their_flags(tmp_path: Path) -> None:
    recording = tmp_path / "binance-2024-03-01.jsonl"
    closed = [kline_at(1, "BTCUSDT", START + i * 1000) for i in range(3)]
    lines = [combined_stream_message(in_progress(closed[0], START + 500))]
    lines += [combined_stream_message(k) for k in closed]
    lines += [
        '{"result":null,"id":1}',
        '{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1709251203000}}',
        '{"stream":"btcusdt@kline_1s","data":{"e":"kline"}}',
        "",
        combined_stream_message(kline_at(1, "ETHUSDT", START + 3000)),
    ]
    recording.write_text("\n".join(lines) + "\n")
    items = await replayed(ReplaySource(recording, speed=None, symbols={"BTCUSDT"}))
    assert [type(i).__name__ for i in items] == ["Kline"] * 4 + ["Rejected", "Rejected"]
    assert [k.closed for k in items[:4] if isinstance(k, Kline)] == [False, True, True, True]
    assert items[1:4] == closed
    assert [i.kind for i in items if isinstance(i, Rejected)] == ["missing_field", "unknown_symbol"]


def test_unknown_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot replay"):
        ReplaySource(tmp_path / "klines.parquet")
    with pytest.raises(ValueError, match="nothing to replay"):
        ReplaySource(tmp_path)
