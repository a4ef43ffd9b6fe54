"""When a minute is final, and which windows the minute job refreshes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptochart.ingest.minute_windows import (
    Pending,
    Window,
    cut_time,
    merged_ranges,
    merged_windows,
    minute_window,
)

T = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
S = timedelta(seconds=1)
M = timedelta(minutes=1)
GRACE = timedelta(seconds=3)


def test_minute_is_final_when_every_symbol_wrote_its_last_second() -> None:
    # 0.3 s after 10:01:00 the slowest symbol has written 10:00:59: minute 10:00 is final.
    assert cut_time(T + 59 * S, T + M + 0.3 * S, GRACE) == T + M


def test_minute_waits_for_a_slow_symbol_until_the_grace_passes() -> None:
    assert cut_time(T + 30 * S, T + M + 2 * S, GRACE) == T
    assert cut_time(T + 30 * S, T + M + 3 * S, GRACE) == T + M


def test_no_active_symbol_falls_back_to_the_grace() -> None:
    assert cut_time(None, T + 5 * M + 10 * S, GRACE) == T + 5 * M


def test_window_covers_whole_minutes_before_the_cut() -> None:
    p = Pending(1, "A", T + 12 * S, T + 2 * M + 7 * S, 100)
    assert minute_window(p, T + 2 * M, T - M) == Window("A", T, T + 2 * M)
    assert minute_window(p, T + 10 * M, T - M) == Window("A", T, T + 3 * M)
    assert minute_window(p, T, T - M) is None


def test_window_never_reaches_past_the_raw_retention() -> None:
    p = Pending(1, "A", T, T + 5 * M, 300)
    assert minute_window(p, T + 10 * M, T + 2 * M + 30 * S) == Window("A", T + 3 * M, T + 6 * M)
    assert minute_window(p, T + 10 * M, T + 7 * M) is None


def test_widened_to_level_buckets() -> None:
    w = Window("A", T + 6 * M, T + 7 * M)
    assert w.widened(5 * M) == Window("A", T + 5 * M, T + 10 * M)
    assert w.widened(timedelta(days=1)).start == datetime(2026, 11, 26, tzinfo=UTC)


def test_merged_ranges_join_overlapping_and_touching_windows() -> None:
    windows = [
        Window("A", T, T + M),
        Window("B", T + M, T + 2 * M),
        Window("C", T + 5 * M, T + 6 * M),
        Window("D", T + 30 * S, T + 90 * S),
    ]
    assert merged_ranges(windows) == [(T, T + 2 * M), (T + 5 * M, T + 6 * M)]


def test_merged_windows_join_a_symbols_overlapping_and_touching_windows_only() -> None:
    hour = timedelta(hours=1)
    windows = [
        Window("A", T + 2 * M, T + 3 * M),
        Window("A", T, T + 2 * M),  # touches the one above
        Window("B", T, T + M),
        Window("A", T + 10 * M, T + 11 * M),
        Window("B", T + 30 * S, T + 90 * S),  # overlaps B's first
    ]
    assert merged_windows(windows) == [
        Window("A", T, T + 3 * M),
        Window("A", T + 10 * M, T + 11 * M),
        Window("B", T, T + 90 * S),
    ]
    # Widened to an hour, a symbol's separate minutes fall in one bucket: one window.
    assert merged_windows(w.widened(hour) for w in windows) == [
        Window("A", T, T + hour),
        Window("B", T, T + hour),
    ]
