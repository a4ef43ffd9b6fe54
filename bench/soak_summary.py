"""What a soak run's samples say: each series' growth after the warm-up (the median of its last
window against the median of its first window after the warm-up) and the minute freshness'
percentiles, judged against the goal (no growth beyond 10 %, freshness steady)."""

from __future__ import annotations

import csv
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.results import percentile
from bench.soak_sampler import GROUPS, Sample

GROWTH_LIMIT_PCT = 10.0
# A minute is final a few seconds after it closes, so the newest final minute's end is at most a
# minute and that delay old; more means the minute job fell behind.
FRESHNESS_LIMIT_S = 75.0
# Memory and open files of every stage and service, and the connections the stages hold;
# PostgreSQL's cache of open table files (postgres_relation_files) is shown, not judged.
JUDGED = (*(f"{g}_{what}" for g in GROUPS for what in ("rss_mib", "fds")), "postgres_backends")


@dataclass(frozen=True)
class Growth:
    series: str
    first: float  # median of the first window after the warm-up
    last: float  # median of the last window
    pct: float | None  # (last - first) / first, in %; None when first is 0 and last is not

    @property
    def met(self) -> bool:
        return self.pct is not None and self.pct <= GROWTH_LIMIT_PCT


@dataclass(frozen=True)
class Summary:
    samples: int  # after the warm-up
    seconds: float  # from the end of the warm-up to the last sample
    growth: list[Growth]
    freshness: tuple[float, float, float] | None  # p50, p99, max (s)
    warmup_end: float = 0.0  # seconds: the fixed warm-up, or when caught up if that was later
    caught_up: float | None = None  # seconds: the newest final minute first within the limit

    @property
    def freshness_steady(self) -> bool:
        return self.freshness is not None and self.freshness[2] <= FRESHNESS_LIMIT_S

    @property
    def met(self) -> bool:
        judged = [g for g in self.growth if g.series in JUDGED]
        return bool(judged) and all(g.met for g in judged) and self.freshness_steady


def read_csv(path: Path) -> list[Sample]:
    """The samples of a soak run's CSV (an empty cell: not measured then)."""
    with path.open(newline="") as table:
        rows = list(csv.DictReader(table))
    return [
        Sample(
            float(row.pop("elapsed_s")),
            {name: float(cell) if cell else None for name, cell in row.items()},
        )
        for row in rows
    ]


def values(samples: Sequence[Sample], series: str) -> list[float]:
    return [v for s in samples if (v := s.values.get(series)) is not None]


def growth(first: Sequence[Sample], last: Sequence[Sample], series: str) -> Growth | None:
    """The series' change from ``first``'s median to ``last``'s; None without values in both."""
    before, after = values(first, series), values(last, series)
    if not before or not after:
        return None
    a, b = statistics.median(before), statistics.median(after)
    pct = (b - a) / a * 100 if a else (0.0 if b == a else None)
    return Growth(series, a, b, pct)


def caught_up(samples: Sequence[Sample]) -> float | None:
    """When the newest final minute was first within the freshness limit: the history the run
    started with (`cryptochart run` backfills an hour) rolled up, the minute job on the clock."""
    for sample in samples:
        fresh = sample.values.get("freshness_s")
        if fresh is not None and fresh <= FRESHNESS_LIMIT_S:
            return sample.elapsed
    return None


def summarise(
    samples: Sequence[Sample], series: Sequence[str], warmup_s: float, window_s: float
) -> Summary:
    """Samples from the end of the warm-up on (``warmup_s``, or the moment the run caught up
    with the clock if that came later); the first and last ``window_s`` of them compared. A run
    that never caught up is judged from ``warmup_s``."""
    ready = caught_up(samples)
    warmup_s = max(warmup_s, ready) if ready is not None else warmup_s
    kept = [s for s in samples if s.elapsed >= warmup_s]
    if not kept:
        return Summary(0, 0.0, [], None, warmup_s, ready)
    end = kept[-1].elapsed
    first = [s for s in kept if s.elapsed < warmup_s + window_s]
    last = [s for s in kept if s.elapsed > end - window_s]
    grown = [g for name in series if (g := growth(first, last, name)) is not None]
    fresh = values(kept, "freshness_s")
    spread = (percentile(fresh, 50), percentile(fresh, 99), max(fresh)) if fresh else None
    return Summary(len(kept), end - warmup_s, grown, spread, warmup_s, ready)


def _pct(g: Growth) -> str:
    return "n/a (from 0)" if g.pct is None else f"{g.pct:+.1f} %"


def markdown(summary: Summary, heading: str, context: Sequence[str]) -> str:
    """A Markdown section: how it ran (``context``), the growth table and the freshness line."""
    lines = [f"## {heading}", "", *[f"- {line}" for line in context], ""]
    ready = (
        "never within the limit"
        if summary.caught_up is None
        else f"first within the limit {summary.caught_up:.0f} s into the run"
    )
    lines += [
        f"Warm-up: the first {summary.warmup_end:.0f} s (the fixed warm-up, or until the hour "
        f"backfilled at the start was rolled up — the minute freshness {ready} — if later).",
        "",
        f"After the warm-up: {summary.samples} samples over {summary.seconds / 60:.1f} min; "
        f"growth = median of the last window vs the first window after the warm-up "
        f"(goal: ≤ {GROWTH_LIMIT_PCT:.0f} % for memory and open files).",
        "",
        "| series | first window (median) | last window (median) | growth | met |",
        "|---|---:|---:|---:|---|",
    ]
    for g in summary.growth:
        met = ("yes" if g.met else "NO") if g.series in JUDGED else ""
        lines.append(f"| {g.series} | {g.first:,.1f} | {g.last:,.1f} | {_pct(g)} | {met} |")
    lines.append("")
    if summary.freshness is None:
        lines.append("Minute freshness: no final minute was seen.")
    else:
        p50, p99, top = summary.freshness
        verdict = "steady" if summary.freshness_steady else "NOT steady"
        lines.append(
            "Minute freshness (now minus the end of the newest final kline_1m minute): "
            f"p50 {p50:.1f} s, p99 {p99:.1f} s, max {top:.1f} s — {verdict} "
            f"(limit {FRESHNESS_LIMIT_S:.0f} s: a minute, plus the few seconds until it is final)."
        )
    lines += ["", f"Goal met: {'yes' if summary.met else 'NO'}.", ""]
    return "\n".join(lines)
