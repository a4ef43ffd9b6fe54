"""``python -m bench.api_burst [--symbols 1000] [--flavour F]``: the API's memory while a burst
passes its Kafka intake. An API with no client follows a fresh topic; `cryptochart backfill --from
-1h --source sim` then produces an hour of every symbol at once (3.6 million klines at 1,000
symbols), as `cryptochart run` does at its start. Prints the API's RSS before, its peak during
the burst and 30 s after it, and the burst's length. Not part of ``make bench``."""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import psutil

from bench import klines as sim
from bench.live_api import wait_ready
from bench.processes import Stage, spawn, stop_all
from bench.scratch import scratch_settings
from cryptochart.core.settings import Settings
from cryptochart.db.migrate import FLAVOURS, Flavour
from cryptochart.devservices.ports import free_port

AFTER_SECONDS = 30.0
SAMPLE_SECONDS = 0.25


def _mib(proc: psutil.Process) -> float:
    return float(proc.memory_info().rss) / 2**20


def burst(base: Settings, flavour: Flavour, symbols: int, logs: Path) -> str:
    names = sim.symbols(symbols)
    with scratch_settings(base, flavour, "apiburst", symbols=names, source="sim") as settings:
        settings = replace(settings, api_port=free_port())
        stages: list[Stage] = []
        try:
            api = spawn(settings, "burst-api", ["serve", "--log-level", "warning"], logs)
            stages.append(api)
            wait_ready(settings, api)
            proc = psutil.Process(api.pid)
            idle = peak = _mib(proc)
            started = time.monotonic()
            backfill = spawn(
                settings, "burst-backfill", ["backfill", "--from", "-1h", "--source", "sim"], logs
            )
            stages.append(backfill)
            while backfill.alive():
                peak = max(peak, _mib(proc))
                time.sleep(SAMPLE_SECONDS)
            produced = time.monotonic() - started
            settle = time.monotonic() + AFTER_SECONDS
            while time.monotonic() < settle:
                peak = max(peak, _mib(proc))
                time.sleep(SAMPLE_SECONDS)
            return (
                f"{flavour}, {symbols:,} symbols: API RSS before {idle:.0f} MB, "
                f"peak {peak:.0f} MB, {_mib(proc):.0f} MB {AFTER_SECONDS:.0f} s after the burst "
                f"(an hour of klines produced in {produced:.0f} s)"
            )
        finally:
            stop_all(reversed(stages))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.api_burst", description=__doc__)
    parser.add_argument("--symbols", type=int, default=1000)
    parser.add_argument("--flavour", choices=FLAVOURS, default="timescaledb")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cryptochart-burst-") as logs:
        print(burst(Settings.from_env(), args.flavour, args.symbols, Path(logs)))


if __name__ == "__main__":
    main()
