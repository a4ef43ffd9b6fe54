"""The soak run (`make soak`): its summary's arithmetic (growth after the warm-up, freshness
percentiles), and a short real run of `cryptochart run` sampled every second: every stage and
service measured, the lag, freshness and API status read, the files written, and nothing left
running or stored afterwards."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from confluent_kafka.admin import AdminClient

from bench.scratch import RUN_TOKEN
from bench.soak import SoakOptions, soak
from bench.soak_sampler import GROUPS, Sample, columns
from bench.soak_summary import markdown, read_csv, summarise
from cryptochart.core.settings import Settings
from tests.conftest import flavours_under_test


def series(*points: tuple[float, float | None, float | None]) -> list[Sample]:
    """Samples of (elapsed, api_rss_mib, freshness_s)."""
    return [Sample(t, {"api_rss_mib": rss, "freshness_s": fresh}) for t, rss, fresh in points]


def test_growth_compares_the_last_window_with_the_first_after_the_warm_up() -> None:
    samples = series(
        (0, 900.0, 500.0),  # warm-up: left out, however large
        (5, 900.0, 500.0),
        (10, 100.0, 10.0),  # first window after the warm-up [10, 20): median 100
        (13, 104.0, 20.0),
        (16, 96.0, 30.0),
        (20, 105.0, None),  # neither window
        (25, 108.0, 40.0),
        (31, 110.0, 50.0),  # last window (22, 32]: median 110
        (32, 112.0, 60.0),
    )
    summary = summarise(samples, ["api_rss_mib", "freshness_s"], warmup_s=10, window_s=10)
    assert summary.samples == 7
    assert summary.seconds == 22
    rss = summary.growth[0]
    assert (rss.first, rss.last, rss.pct) == (100.0, 110.0, 10.0)
    assert rss.met  # exactly 10 % is within the goal
    # Freshness over every sample after the warm-up (nearest rank), None skipped.
    assert summary.freshness == (30.0, 60.0, 60.0)
    assert summary.freshness_steady
    assert summary.met


def test_growth_beyond_ten_percent_or_from_zero_misses_the_goal() -> None:
    samples = [
        Sample(t, {"api_fds": fds, "kafka_fds": 0.0, "api_rss_mib": 50.0, "freshness_s": 80.0})
        for t, fds in ((0, 10.0), (1, 10.0), (2, 11.2), (3, 11.2))
    ]
    summary = summarise(samples, ["api_fds", "kafka_fds", "api_rss_mib"], 0, 2)
    by_name = {g.series: g for g in summary.growth}
    assert by_name["api_fds"].pct == pytest.approx(12.0)
    assert not by_name["api_fds"].met
    assert by_name["kafka_fds"].pct == 0.0  # zero stays zero
    assert by_name["api_rss_mib"].met
    assert not summary.freshness_steady  # 80 s: the minute job fell behind
    assert not summary.met
    started = [Sample(0, {"api_fds": 0.0}), Sample(1, {"api_fds": 3.0})]
    from_zero = summarise(started, ["api_fds"], 0, 1).growth[0]
    assert from_zero.pct is None and not from_zero.met
    text = markdown(summary, "Soak", ["one line"])
    assert "| api_fds | 10.0 | 11.2 | +12.0 % | NO |" in text
    assert "max 80.0 s — NOT steady" in text
    assert "Goal met: NO." in text


def test_the_warm_up_lasts_until_the_backfilled_history_is_rolled_up() -> None:
    samples = series(
        (0, 900.0, None),
        (10, 100.0, 900.0),  # past the fixed warm-up, the backfilled hour still rolling up
        (20, 100.0, 80.0),
        (30, 110.0, 20.0),  # caught up: the warm-up ends here
        (40, 110.0, 30.0),
        (50, 110.0, 40.0),
    )
    summary = summarise(samples, ["api_rss_mib", "freshness_s"], warmup_s=10, window_s=10)
    assert (summary.warmup_end, summary.caught_up, summary.samples) == (30, 30, 3)
    assert summary.growth[0].first == 110.0 and summary.freshness == (30.0, 40.0, 40.0)
    assert "first within the limit 30 s into the run" in markdown(summary, "Soak", [])
    late = summarise(samples, ["api_rss_mib"], warmup_s=45, window_s=10)
    assert late.warmup_end == 45  # caught up before the fixed warm-up ended: it stands


def test_nothing_after_the_warm_up_gives_an_empty_summary() -> None:
    summary = summarise(series((0, 1.0, 1.0)), ["api_rss_mib"], warmup_s=60, window_s=10)
    assert (summary.samples, summary.growth, summary.freshness, summary.met) == (0, [], None, False)


def test_a_short_soak_samples_the_running_product_and_leaves_nothing_behind(
    base_settings: Settings, services: list[str], tmp_path: Path
) -> None:
    flavour = flavours_under_test()[0]
    options = SoakOptions(
        minutes=20 / 60,
        symbols=3,
        interval=1.0,
        warmup=5.0,
        window=5.0,
        flavour=flavour,
        out=tmp_path,
        logs=tmp_path,
        progress=False,
    )
    # The broker's shortest session: the static inserter's group is empty, and dropped, sooner.
    base = replace(base_settings, inserter_session_timeout_seconds=6.0)
    result = soak(base, options)

    assert not result.stopped_early
    with result.csv.open() as table:
        rows = list(csv.DictReader(table))
    assert len(rows) == len(result.samples) >= 12
    assert list(rows[0]) == ["elapsed_s", *columns()]
    again = read_csv(result.csv)  # what `--from-csv` summarises again
    assert [s.elapsed for s in again] == pytest.approx([s.elapsed for s in result.samples], abs=0.1)
    for name, value in result.samples[-1].values.items():
        assert again[-1].values[name] == (None if value is None else pytest.approx(value, 1e-5))
    last = result.samples[-1].values
    for group in GROUPS:  # every stage and both services, measured
        assert (last[f"{group}_rss_mib"] or 0) > 1, group
        assert (last[f"{group}_fds"] or 0) > 0, group
    # The inserter's, the minute job's and the API's connections at least; PostgreSQL's open
    # table files counted apart from its other descriptors.
    assert (last["postgres_backends"] or 0) >= 3
    assert last["postgres_relation_files"] is not None and last["postgres_relation_files"] >= 0
    assert last["restarts"] == 0
    assert last["api_kafka_ready"] == 1  # /api/v1/status answered
    assert last["inserter_lag"] is not None and last["inserter_lag"] >= 0
    # The minute job rolls the backfilled hour up oldest first, then keeps up with the clock.
    fresh = [f for s in result.samples if (f := s.values["freshness_s"]) is not None]
    assert fresh and min(fresh) >= 0
    assert 0 <= (last["freshness_s"] or -1) <= 120
    assert result.summary.samples > 0 and result.summary.freshness is not None

    assert result.png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result.png.stat().st_size < 200_000
    assert result.markdown.read_text().startswith(f"## Soak: 3 symbols, {flavour}")

    # Everything it started is stopped, its database and topics dropped.
    stages = {p.pid for p in result.processes}
    assert len(stages) >= 4
    assert not [p for p in result.processes if p.is_running()]
    prefix = f"cc_bench_{RUN_TOKEN}_soak"
    with psycopg.connect(base_settings.database_url) as conn:
        left = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", (prefix + "%",)
        ).fetchall()
    assert left == []
    admin = AdminClient({"bootstrap.servers": base_settings.kafka_bootstrap})
    assert [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix)] == []
    groups = admin.list_consumer_groups().result(30).valid
    assert [g.group_id for g in groups if g.group_id.startswith(prefix)] == []
