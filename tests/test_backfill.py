"""`cryptochart backfill`: history from Binance REST (our fake) or the simulated feed, stored and
aggregated by the real inserter and minute job."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from cryptochart.core.settings import Settings
from cryptochart.ingest.backfill import BackfillRange, parse_time, publish
from tests.fakes.binance import FakeBinance
from tests.pipeline import candles, count_rows, running_inserter, spawn, wait_rows

NOW = datetime(2026, 11, 26, 12, 0, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-03-01T00:00", 1_709_251_200_000),
        ("2024-03-01T01:00+01:00", 1_709_251_200_000),
        ("1709251200123", 1_709_251_200_000),
        ("-90s", int(NOW.timestamp()) * 1000 - 90_000),
        ("-1h", int(NOW.timestamp()) * 1000 - 3_600_000),
    ],
)
def test_times_people_type(raw: str, expected: int) -> None:
    assert parse_time(raw, NOW) == expected


def test_a_bad_time_names_the_accepted_forms() -> None:
    with pytest.raises(ValueError, match="ISO-8601"):
        parse_time("yesterday", NOW)


async def test_binance_history_through_kafka_into_kline_1s(settings: Settings) -> None:
    async with FakeBinance(start_ms=1_709_251_200_000 + 3_000_000) as fake:
        ours = replace(settings, binance_rest_url=fake.rest_url)
        span = BackfillRange(
            ["BFBTCUSDT", "BFETHUSDT"], 1_709_251_200_000, 1_709_251_200_000 + 2_500_000
        )
        producer = await publish(ours, "binance", span)
        expected = [
            fake.kline(s, t) for s in span.symbols for t in range(span.start_ms, span.end_ms, 1000)
        ]
    assert producer.counts["closed"] == 2 * 2500
    with running_inserter(ours):
        wait_rows(ours, span.symbols, 2 * 2500)
    stored = candles(ours, "kline_1s", "BFBTCUSDT")
    want = [k for k in expected if k.symbol == "BFBTCUSDT"]
    assert [r[0] for r in stored] == [k.open_time for k in want]
    assert [r[5] for r in stored] == [k.close for k in want]


def test_backfill_command_waits_for_storage_and_aggregation(settings: Settings) -> None:
    ours = replace(
        settings,
        inserter_group=settings.inserter_group + ".backfill",
        retention_1s="100 years",
        retention_aggregates="100 years",
    )
    workers = [spawn(ours, "insert"), spawn(ours, "aggregate")]
    try:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "cryptochart.cli",
                "backfill",
                "--source",
                "sim",
                "--symbols",
                "BFSIMA,BFSIMB",
                "--from",
                "2024-03-01T00:00",
                "--to",
                "2024-03-01T00:05",
                "--wait",
                "120",
            ],
            env=ours.as_env(),
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    finally:
        for proc in workers:
            proc.terminate()
            proc.wait(30)
    assert result.returncode == 0, result.stderr
    assert "published 600 klines of 2 symbols from sim" in result.stdout
    assert count_rows(ours, "kline_1s", ["BFSIMA", "BFSIMB"]) == 600
    assert count_rows(ours, "kline_1m", ["BFSIMA", "BFSIMB"]) == 10
    assert count_rows(ours, "kline_5m", ["BFSIMA", "BFSIMB"]) == 2
