"""A bounded, paced simulated feed as its own process: a known stretch of past seconds published
at a chosen pace, so that faults land while it flows. (`cryptochart backfill --source sim`
publishes a known stretch too, but all at once; `produce --source sim` paces, but from now.)

    python -m tests.faults.feed --symbols A,B --seed 7 --start-ms 1700000000000 --count 120 \
        --speed 20

publishes the closed klines ``SimulatedSource(symbols, seed, start_ms=, count=)`` yields, paced at
``speed`` exchange seconds per wall-clock second (0: flat out), through the same
``KlineProducer`` and producer loop as the CLI, to the topic the CRYPTOCHART_* environment names,
then flushes and exits 0. Started again, it publishes the same klines again from the start.
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from cryptochart.core.settings import Settings
from cryptochart.core.symbols import parse_symbols
from cryptochart.ingest.producer import KlineProducer, run_producer
from cryptochart.ingest.sources.simulated import SimulatedSource


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults.feed", description=__doc__)
    parser.add_argument("--symbols", required=True, help="comma-separated symbols")
    parser.add_argument("--seed", type=int, default=1, help="random walk seed")
    parser.add_argument("--start-ms", type=int, required=True, help="first open time (ms)")
    parser.add_argument("--count", type=int, required=True, help="seconds of klines")
    parser.add_argument("--speed", type=float, default=0.0, help="exchange s per wall s; 0: max")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = Settings.from_env()
    source = SimulatedSource(
        parse_symbols(args.symbols),
        args.seed,
        speed=args.speed or None,
        start_ms=args.start_ms,
        count=args.count,
    )
    producer = KlineProducer(settings, source.name)
    asyncio.run(run_producer(source, producer))
    return 0 if producer.counts["failed"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
