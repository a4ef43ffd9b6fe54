"""The soak run's samples as one PNG: memory and open files of the stages and of the services,
the consumer lags and the minute freshness over time, the warm-up shaded."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from bench.soak_sampler import SERVICES, STAGES, Sample

FRESHNESS_CLIP_S = 120.0

PANELS: list[tuple[str, str, list[str]]] = [
    ("stages: resident memory", "MiB", [f"{s}_rss_mib" for s in STAGES]),
    ("PostgreSQL and Kafka: resident memory", "MiB", [f"{s}_rss_mib" for s in SERVICES]),
    ("stages: open file descriptors", "fds", [f"{s}_fds" for s in STAGES]),
    ("PostgreSQL and Kafka: open file descriptors", "fds", [f"{s}_fds" for s in SERVICES]),
    ("consumer lag", "messages", ["inserter_lag", "api_consumer_lag"]),
    ("minute freshness (clipped at 120 s)", "s", ["freshness_s"]),
]


def _panel(ax: Axes, samples: Sequence[Sample], unit: str, series: list[str]) -> None:
    for name in series:
        points = [(s.elapsed / 60, v) for s in samples if (v := s.values.get(name)) is not None]
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, label=name, linewidth=1)
    ax.set_ylabel(unit)
    if unit == "messages":  # the start's backlog would flatten the steady lag on a linear axis
        ax.set_yscale("symlog", linthresh=10)
    ax.set_ylim(bottom=0)
    if unit == "s":  # the start's catch-up (the backfilled hour) would flatten the steady minutes
        ax.set_ylim(top=FRESHNESS_CLIP_S)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")


def plot(samples: Sequence[Sample], warmup_s: float, title: str, path: Path) -> None:
    fig, axes = plt.subplots(3, 2, figsize=(12, 9), sharex=True)
    for ax, (name, unit, series) in zip(axes.flat, PANELS, strict=True):
        _panel(ax, samples, unit, series)
        ax.set_title(name, fontsize=9)
        ax.axvspan(0, warmup_s / 60, color="grey", alpha=0.15)
    for ax in axes[-1]:
        ax.set_xlabel("minutes (warm-up shaded)")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=70)
    plt.close(fig)
