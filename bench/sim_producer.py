"""``python -m bench.sim_producer --speed S``: `cryptochart produce --source sim` at S simulated
seconds per wall-clock second (the CLI has no speed for the simulated source), for accelerated
runs. The symbols and topic come from the ``CRYPTOCHART_*`` environment, as for the CLI."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from bench.klines import SEED
from cryptochart.core.settings import Settings
from cryptochart.ingest.producer import KlineProducer, run_producer
from cryptochart.ingest.sources.simulated import SimulatedSource


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sim_producer", description=__doc__)
    parser.add_argument("--speed", type=float, default=1.0, help="simulated seconds per second")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = Settings.from_env()
    source = SimulatedSource(settings.symbols, SEED, speed=args.speed)
    asyncio.run(run_producer(source, KlineProducer(settings, source.name)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
