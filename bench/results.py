"""What a benchmark hands back: figures (each with its target, if it has one) and notes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cryptochart.db.migrate import Flavour

LABELS: dict[Flavour, str] = {"timescaledb": "TimescaleDB", "postgres": "plain PostgreSQL"}
Better = Literal["higher", "lower"]


@dataclass(frozen=True)
class RunOptions:
    quick: bool  # a short smoke run
    logs: Path  # the stages' logs and scratch files of this run
    flavour: Flavour  # the schema flavour of the benchmark's database
    profile: Path | None = None  # where py-spy profiles of the measured stage go, when asked
    b3_speed: float | None = None  # B3's simulated seconds per wall-clock second (None: its own)


@dataclass(frozen=True)
class Figure:
    """One line of the results table; a baseline has no target and ``met`` None. ``value`` (with
    which way is ``better``) lets the flavours be compared as a ratio."""

    bench: str
    what: str
    result: str
    target: str = ""
    met: bool | None = None
    value: float | None = None
    better: Better | None = None


@dataclass
class Outcome:
    bench: str
    title: str
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # how it was measured, one line each

    def add(
        self,
        what: str,
        result: str,
        target: str = "",
        met: bool | None = None,
        *,
        value: float | None = None,
        better: Better | None = None,
    ) -> None:
        self.figures.append(Figure(self.bench, what, result, target, met, value, better))

    def note(self, line: str) -> None:
        self.notes.append(line)


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def rate(value: float, unit: str = "rows/s") -> str:
    return f"{value:,.0f} {unit}"


def ratio(value: float) -> str:
    return f"{value:.2f}x" if value < 10 else f"{value:.0f}x"


def ms(value: float) -> str:
    return f"{value:.1f} ms" if value < 100 else f"{value:,.0f} ms"
