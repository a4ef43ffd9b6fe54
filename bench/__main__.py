"""``python -m bench [B1 …] [--quick] [--flavours timescaledb,postgres]``: run benchmarks on each
schema flavour side by side, print the table, write BENCHMARKS.md."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cryptochart.core.database import connect
from cryptochart.core.settings import ROOT, Settings
from cryptochart.db.migrate import FLAVOURS, Flavour, detect_flavour

try:
    import psutil  # noqa: F401  (the benchmarks' process meter)
except ImportError:
    sys.exit("bench needs psutil: .venv/bin/pip install psutil")

from bench import (
    capacity,
    flood,
    freshness,
    history_api,
    insert_throughput,
    live_api,
    machine,
    page,
    report,
    storage,
)
from bench.results import LABELS, Outcome, RunOptions

Benchmark = Callable[[Settings, RunOptions], Outcome]
BENCHMARKS: dict[str, Benchmark] = {
    "B1": insert_throughput.run,
    "B2": live_api.run_latency,
    "B3": freshness.run,
    "B4": history_api.run,
    "B5": capacity.run,
    "B6": live_api.run_memory,
    "B7": storage.run,
    "B8": flood.run,
    "B9": page.run_load,
    "B10": page.run_day,
}
# Benchmarks that measure every flavour themselves: run once, shown in a table of their own.
BOTH_AT_ONCE = {"B7"}


def _flavours(text: str) -> tuple[Flavour, ...]:
    chosen = tuple(dict.fromkeys(f.strip() for f in text.split(",") if f.strip()))
    unknown = [f for f in chosen if f not in FLAVOURS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"choose from {','.join(FLAVOURS)}")
    return tuple(f for f in FLAVOURS if f in chosen)


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _stop(signum: int, frame: object) -> None:
    # SIGTERM (and SIGINT, which a background job ignores) unwind like Ctrl-C, so every
    # benchmark stops its stages and drops its database and topics.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("only", nargs="*", metavar="B", help=f"a subset of {', '.join(BENCHMARKS)}")
    parser.add_argument("--quick", action="store_true", help="a short smoke run, sizes cut down")
    parser.add_argument(
        "--flavours",
        type=_flavours,
        default=FLAVOURS,
        metavar="F,F",
        help=f"schema flavours to run each benchmark on (default {','.join(FLAVOURS)})",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="also record the measured stage with py-spy (collapsed stacks into DIR)",
    )
    parser.add_argument(
        "--write",
        type=Path,
        metavar="FILE",
        help="write the results into FILE (default: BENCHMARKS.md after a full run, not --quick)",
    )
    parser.add_argument(
        "--b3-speed",
        type=float,
        metavar="S",
        help=f"B3's simulated seconds per wall-clock second (default {freshness.SPEED:g}; "
        "1: live, five minutes)",
    )
    args = parser.parse_args(argv)
    chosen = [b.upper() for b in args.only] or list(BENCHMARKS)
    unknown = [b for b in chosen if b not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    settings = Settings.from_env()
    flavours: tuple[Flavour, ...] = args.flavours
    with connect(settings.database_url, timeout=5) as conn:
        if "timescaledb" in flavours and detect_flavour(conn) != "timescaledb":
            parser.error(
                "the server does not offer the timescaledb extension (scripts/timescaledb.sh); "
                "or run --flavours postgres"
            )
    described = [
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{'quick' if args.quick else 'full'} run of {' '.join(chosen)} on "
        + " and ".join(LABELS[f] for f in flavours)
        + (" (each benchmark on both, the one going first alternating)" if flavours[1:] else ""),
        *machine.describe(settings),
    ]
    print("\n".join(described), flush=True)
    groups: list[dict[Flavour, Outcome]] = []
    once: list[Outcome] = []
    spent = {LABELS[f]: 0.0 for f in flavours} | {"both at once": 0.0}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cryptochart-bench-") as tmp:

        def run(name: str, flavour: Flavour) -> Outcome:
            logs = Path(tmp) / flavour
            logs.mkdir(exist_ok=True)
            profile = args.profile / flavour if args.profile else None
            options = RunOptions(args.quick, logs, flavour, profile, args.b3_speed)
            return BENCHMARKS[name](settings, options)

        for i, name in enumerate(chosen):
            if name in BOTH_AT_ONCE:
                if flavours != FLAVOURS:
                    print(f"\n{name} skipped: it measures every flavour at once", flush=True)
                    continue
                print(f"\n{name} on {' and '.join(LABELS[f] for f in flavours)} …", flush=True)
                t0 = time.monotonic()
                once.append(run(name, flavours[0]))
                print(report.table([], once[-1:]), flush=True)
                spent["both at once"] += time.monotonic() - t0
                print(f"({time.monotonic() - t0:.0f} s; load average {_load()})", flush=True)
                continue
            group: dict[Flavour, Outcome] = {}
            # Which flavour goes first alternates, so a drift in the box's load favours neither.
            for flavour in flavours[::-1] if i % 2 else flavours:
                print(f"\n{name} on {LABELS[flavour]} …", flush=True)
                t0 = time.monotonic()
                group[flavour] = run(name, flavour)
                print(report.table([{flavour: group[flavour]}]), flush=True)
                spent[LABELS[flavour]] += time.monotonic() - t0
                print(f"({time.monotonic() - t0:.0f} s; load average {_load()})", flush=True)
            groups.append({f: group[f] for f in flavours})
    print()
    print(report.table(groups, once))
    took = (
        f"total {time.monotonic() - started:.0f} s ("
        + ", ".join(f"{label} {s:.0f} s" for label, s in spent.items() if s)
        + f"); load average at the end: {_load()}"
    )
    print(took)
    target = args.write
    if target is None and not args.quick and chosen == list(BENCHMARKS) and flavours == FLAVOURS:
        target = ROOT / "BENCHMARKS.md"
    if target is not None:
        report.write_results(target, [*described, took], groups, once)
        print(f"results written to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
