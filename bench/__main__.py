"""``python -m bench [B1 …] [--quick]``: run benchmarks, print the table, write BENCHMARKS.md."""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cryptochart.core.settings import ROOT, Settings

try:
    import psutil  # noqa: F401  (the benchmarks' process meter)
except ImportError:
    sys.exit("bench needs psutil: .venv/bin/pip install psutil")

from bench import (
    capacity,
    freshness,
    history_api,
    insert_throughput,
    live_api,
    machine,
    report,
)
from bench.results import Outcome, RunOptions

Benchmark = Callable[[Settings, RunOptions], Outcome]
BENCHMARKS: dict[str, Benchmark] = {
    "B1": insert_throughput.run,
    "B2": live_api.run_latency,
    "B3": freshness.run,
    "B4": history_api.run,
    "B5": capacity.run,
    "B6": live_api.run_memory,
}


def _stop(signum: int, frame: object) -> None:
    # SIGTERM (and SIGINT, which a background job ignores) unwind like Ctrl-C, so every
    # benchmark stops its stages and drops its database and topics.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("only", nargs="*", metavar="B", help=f"a subset of {', '.join(BENCHMARKS)}")
    parser.add_argument("--quick", action="store_true", help="a short smoke run, sizes cut down")
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
    described = [
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{'quick' if args.quick else 'full'} run of {' '.join(chosen)}",
        *machine.describe(settings),
    ]
    print("\n".join(described), flush=True)
    outcomes = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cryptochart-bench-") as tmp:
        for name in chosen:
            print(f"\n{name} …", flush=True)
            t0 = time.monotonic()
            options = RunOptions(args.quick, Path(tmp), args.profile, args.b3_speed)
            outcome = BENCHMARKS[name](settings, options)
            outcomes.append(outcome)
            print(report.table([outcome]), flush=True)
            print(f"({time.monotonic() - t0:.0f} s)", flush=True)
    print()
    print(report.table(outcomes))
    took = f"total {time.monotonic() - started:.0f} s"
    print(took)
    target = args.write
    if target is None and not args.quick and chosen == list(BENCHMARKS):
        target = ROOT / "BENCHMARKS.md"
    if target is not None:
        report.write_results(target, [*described, took], outcomes)
        print(f"results written to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
