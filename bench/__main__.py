"""``python -m bench [B1 …] [--quick]``: run benchmarks, print the table, write BENCHMARKS.md."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cryptochart.settings import Settings

try:
    import psutil  # noqa: F401  (the benchmarks' process meter)
except ImportError:
    sys.exit("bench needs psutil: .venv/bin/pip install psutil")

from bench import insert_throughput, machine, report
from bench.results import Outcome

Benchmark = Callable[[Settings, bool, Path], Outcome]
BENCHMARKS: dict[str, Benchmark] = {
    "B1": insert_throughput.run,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("only", nargs="*", metavar="B", help=f"a subset of {', '.join(BENCHMARKS)}")
    parser.add_argument("--quick", action="store_true", help="a short smoke run, sizes cut down")
    args = parser.parse_args(argv)
    chosen = [b.upper() for b in args.only] or list(BENCHMARKS)
    unknown = [b for b in chosen if b not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    settings = Settings.from_env()
    described = machine.describe(settings)
    print("\n".join(described), flush=True)
    outcomes = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cryptochart-bench-") as tmp:
        for name in chosen:
            print(f"\n{name} …", flush=True)
            t0 = time.monotonic()
            outcome = BENCHMARKS[name](settings, args.quick, Path(tmp))
            outcomes.append(outcome)
            print(report.table([outcome]), flush=True)
            print(f"({time.monotonic() - t0:.0f} s)", flush=True)
    print()
    print(report.table(outcomes))
    print(f"total {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
