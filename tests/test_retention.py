"""History older than the retention: a replay or backfill of it is refused up front with one line
naming the settings; following that line (raise them, migrate) replays a real Binance day into
kline_1s and kline_1m; and the minute job says, once, what it leaves unaggregated and why."""

from __future__ import annotations

import logging
import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace

import psycopg
import pytest

from cryptochart.core.settings import Settings
from cryptochart.db.migrate import Flavour
from cryptochart.ingest.minute_job import MinuteJob
from tests.conftest import provisioned
from tests.pipeline import (
    DATA,
    candles,
    count_rows,
    produce,
    read_dump,
    renamed,
    rolled_up,
    running_inserter,
    wait_rows,
)

DAY_FILE = "BTCUSDT-1s-2024-03-01.part01.first180rows.csv"


def cli(
    settings: Settings, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cryptochart.cli", *args],
        env={**settings.as_env(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one line the command printed on stderr (logs aside)."""
    lines = [line for line in result.stderr.splitlines() if ": error: " in line]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_replay_beyond_retention_is_refused_then_kept_as_the_line_says(
    base_settings: Settings, database_factory: Callable[[str], str], flavour: Flavour
) -> None:
    ours = provisioned(base_settings, database_factory(f"replay_{flavour}"), flavour)
    replay = ["produce", "--source", "replay", "--replay", str(DATA / DAY_FILE), "--speed", "0"]

    refused = cli(ours, *replay)
    assert refused.returncode == 1
    line = error_line(refused)
    assert line.startswith("cryptochart produce: error: the replay of ")
    assert "starts at 2024-03-01T00:00:00Z, older than CRYPTOCHART_RETENTION_1S (7 days)" in line
    assert "run `cryptochart migrate`" in line
    # Both settings are named with a value that covers the day, in a form a shell takes.
    wanted = dict(re.findall(r"(CRYPTOCHART_RETENTION_(?:1S|AGGREGATES))=('[^']+')", line))
    assert set(wanted) == {"CRYPTOCHART_RETENTION_1S", "CRYPTOCHART_RETENTION_AGGREGATES"}
    env = {name: shlex.split(value)[0] for name, value in wanted.items()}

    migrated = cli(ours, "migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr
    replayed = cli(ours, *replay, env=env)
    assert replayed.returncode == 0, replayed.stderr

    kept = replace(
        ours,
        retention_1s=env["CRYPTOCHART_RETENTION_1S"],
        retention_aggregates=env["CRYPTOCHART_RETENTION_AGGREGATES"],
    )
    day = read_dump(DAY_FILE)
    with running_inserter(kept):
        wait_rows(kept, ["BTCUSDT"], len(day))
    with psycopg.connect(kept.database_url) as conn:
        MinuteJob(kept).run_once(conn)
    minutes = candles(kept, "kline_1m", "BTCUSDT")
    assert [m[1:] for m in minutes] == [rolled_up(day[i : i + 60]) for i in range(0, len(day), 60)]


def test_a_backfill_beyond_retention_is_refused(settings: Settings) -> None:
    result = cli(
        settings,
        "backfill",
        "--source",
        "sim",
        "--symbols",
        "RETOLD",
        "--from",
        "2024-03-01T00:00",
        "--to",
        "2024-03-01T00:05",
    )
    assert result.returncode == 1
    line = error_line(result)
    assert "this backfill starts at 2024-03-01T00:00:00Z" in line
    assert "CRYPTOCHART_RETENTION_1S=" in line and "CRYPTOCHART_RETENTION_AGGREGATES=" in line
    assert "published" not in result.stdout
    assert count_rows(settings, "kline_1s", ["RETOLD"]) == 0


def test_the_minute_job_logs_once_what_it_skips_and_why(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    old = renamed(read_dump(DAY_FILE), "SKIPOLD")
    produce(settings, old)
    with running_inserter(settings):
        wait_rows(settings, ["SKIPOLD"], len(old))
    caplog.set_level(logging.WARNING, logger="cryptochart.ingest.minute_job")
    job = MinuteJob(settings)
    with psycopg.connect(settings.database_url) as conn:
        job.run_once(conn)
        job.run_once(conn)
    told = [r.getMessage() for r in caplog.records if "SKIPOLD" in r.getMessage()]
    assert len(told) == 1, told
    assert "from 2024-03-01T00:00:00+00:00 to 2024-03-01T00:02:59+00:00" in told[0]
    assert "older than CRYPTOCHART_RETENTION_1S (7 days" in told[0]
    assert count_rows(settings, "kline_1m", ["SKIPOLD"]) == 0
