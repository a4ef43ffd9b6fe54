"""``python -m bench.sim_producer --speed S``: `cryptochart produce --source sim` at S simulated
seconds per wall-clock second (the CLI has no speed for the simulated source), for accelerated
runs. The symbols and topic come from the ``CRYPTOCHART_*`` environment, as for the CLI.

With ``--span N`` the walk starts far enough in the past that its N simulated seconds end at the
wall clock, never ahead of it (the inserter refuses klines from the future)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time

from bench.klines import SEED
from cryptochart.core.settings import Settings
from cryptochart.ingest.producer import KlineProducer, run_producer
from cryptochart.ingest.sources.simulated import SimulatedSource


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sim_producer", description=__doc__)
    parser.add_argument("--speed", type=float, default=1.0, help="simulated seconds per second")
    parser.add_argument("--span", type=float, default=0.0, help="simulated seconds the run lasts")
    args = parser.parse_args()
    # After `span` simulated seconds, span / speed wall-clock seconds have passed: start that much
    # less than `span` in the past, so the walk ends at the clock.
    ahead = args.span - args.span / args.speed if args.speed > 1 else 0.0
    start_ms = int(time.time() - ahead) * 1000 if ahead else None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = Settings.from_env()
    source = SimulatedSource(settings.symbols, SEED, speed=args.speed, start_ms=start_ms)
    asyncio.run(run_producer(source, KlineProducer(settings, source.name)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
