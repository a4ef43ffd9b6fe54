"""Subcommands of the ingest stages: produce, insert, aggregate."""

from __future__ import annotations

import argparse
import asyncio
import signal
import threading
import time
from dataclasses import replace

from cryptochart.core.settings import Settings
from cryptochart.core.symbols import parse_symbols


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def _source_settings(args: argparse.Namespace, settings: Settings) -> Settings:
    changes: dict[str, object] = {}
    if args.source:
        changes["source"] = args.source
    if args.symbols:
        changes["symbols"] = parse_symbols(args.symbols)
    if getattr(args, "replay", None):
        changes["replay_path"] = args.replay
        changes["source"] = "replay"
    if getattr(args, "speed", None) is not None:
        changes["replay_speed"] = args.speed
    return replace(settings, **changes)  # type: ignore[arg-type]


def _produce(args: argparse.Namespace, settings: Settings) -> int:
    from cryptochart.ingest.producer import KlineProducer, run_producer
    from cryptochart.ingest.retention import refuse_beyond_retention
    from cryptochart.ingest.sources.registry import open_source
    from cryptochart.ingest.sources.replay import ReplaySource

    settings = _source_settings(args, settings)
    source = open_source(settings, history_seconds=args.history)
    if isinstance(source, ReplaySource) and (first := source.first_open_time()) is not None:
        refuse_beyond_retention(settings, first, f"the replay of {source.path}")
    asyncio.run(run_producer(source, KlineProducer(settings, source.name)))
    return 0


def _insert(args: argparse.Namespace, settings: Settings) -> int:
    from cryptochart.ingest.inserter import KlineInserter

    KlineInserter(settings, stop=_stop_on_signals()).run()
    return 0


def _aggregate(args: argparse.Namespace, settings: Settings) -> int:
    from cryptochart.core.database import connect
    from cryptochart.ingest.minute_job import MinuteJob

    job = MinuteJob(settings)
    if args.once:
        with job, connect(settings.minute_job_dsn) as conn:
            report = job.run_once(conn)
        print(
            f"aggregated {report.checkpoints} checkpoints in {len(report.windows)} windows "
            f"up to {report.cut.isoformat()}"
        )
        return 0
    job.run_forever(_stop_on_signals())
    return 0


def _backfill(args: argparse.Namespace, settings: Settings) -> int:
    from cryptochart.ingest.backfill import BackfillRange, parse_time, publish, wait_stored
    from cryptochart.ingest.retention import refuse_beyond_retention

    settings = _source_settings(args, settings)
    source = "sim" if settings.source == "sim" else "binance"
    end = parse_time(args.to) if args.to else int(time.time()) * 1000 - 1000
    span = BackfillRange(settings.symbols, parse_time(args.from_), end)
    if span.seconds <= 0:
        raise ValueError(f"--from must be before --to (got {span.seconds} seconds)")
    refuse_beyond_retention(settings, span.start_ms, "this backfill")
    producer = asyncio.run(publish(settings, source, span))
    published = producer.counts["closed"]
    print(
        f"published {published} klines of {len(span.symbols)} symbols from {source}"
        f"{', rejected ' + str(producer.counts['rejected']) if producer.counts['rejected'] else ''}"
    )
    if args.wait:
        wait_stored(settings, span, published, args.wait)
        print("stored in kline_1s and aggregated")
    return 0


def _audit(args: argparse.Namespace, settings: Settings) -> int:
    from cryptochart.ingest.audit import (
        AuditRequest,
        audit,
        default_end_ms,
        repair,
        report_lines,
        summary,
        unrepaired,
    )
    from cryptochart.ingest.backfill import parse_time

    symbols = parse_symbols(args.symbols) if args.symbols else settings.symbols
    start = parse_time(args.from_) if args.from_ else None
    end = parse_time(args.to) if args.to else default_end_ms()
    if start is not None and start >= end:
        raise ValueError("--from must be before --to")
    request = AuditRequest(symbols, start, end)
    found = audit(settings, request)
    for line in report_lines(found):
        print(line)
    print(f"audit: {summary(found)}")
    if args.repair and any(g.missing for g in found):
        report = repair(settings, found, args.wait)
        print(
            f"repair: published {report.published} klines from {settings.binance_rest_url}"
            + (f", rejected {report.rejected}" if report.rejected else "")
        )
        for failure in report.failed:
            print(f"repair: could not get {failure}")
        found = audit(settings, request)
        print(f"after repair: {summary(found)}")
        for line in unrepaired(found):
            print(f"could not repair: {line}")
    return 0 if all(g.complete for g in found) else 1


def add_source_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--source",
        choices=["auto", "binance", "sim", "replay"],
        help="where klines come from (default: CRYPTOCHART_SOURCE)",
    )
    parser.add_argument(
        "--symbols",
        help="comma-separated symbols, or a count such as 50 (default: CRYPTOCHART_SYMBOLS)",
    )


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    produce = sub.add_parser(
        "produce",
        help="stream klines from the source into Kafka",
        description="Read 1s klines from Binance, the simulated feed or a replay, and publish "
        "them to the klines topic keyed by symbol. Stops cleanly on Ctrl-C / SIGTERM.",
    )
    add_source_options(produce)
    produce.add_argument(
        "--replay", metavar="PATH", help="replay a Binance CSV/zip dump or JSON lines file"
    )
    produce.add_argument("--speed", type=float, help="replay speed factor (0: as fast as possible)")
    produce.add_argument(
        "--history",
        type=int,
        metavar="SECONDS",
        default=None,
        help="start this far in the past: Binance repairs it from REST, the simulated feed "
        "generates it at once, then both go on live (default: Binance 600, simulated 0)",
    )
    produce.set_defaults(run=_produce)

    backfill = sub.add_parser(
        "backfill",
        help="load history: 1s klines into Kafka, then stored and aggregated",
        description="Fetch the closed 1s klines of a time range (Binance REST, or the simulated "
        "feed with --source sim) and publish them like live klines; with --wait, wait until the "
        "running inserter and minute job have stored and aggregated them.",
    )
    add_source_options(backfill)
    backfill.add_argument(
        "--from",
        dest="from_",
        required=True,
        metavar="TIME",
        help="start: 2024-03-01T00:00 (UTC), Unix ms, or -1h / -30m",
    )
    backfill.add_argument("--to", metavar="TIME", help="end, exclusive (default: now)")
    backfill.add_argument(
        "--wait",
        type=float,
        metavar="SECONDS",
        default=0,
        help="then wait up to SECONDS for storage and aggregation",
    )
    backfill.set_defaults(run=_backfill)

    audit = sub.add_parser(
        "audit",
        help="find (and repair) missing seconds of kline_1s",
        description="Per symbol and UTC day: the seconds kline_1s should hold, holds and lacks "
        "(as ranges) and the minutes of kline_1m under 60 seconds. Expected are the whole "
        "seconds from --from (default: the symbol's first stored second) to --to (default: the "
        "start of the current minute), never older than CRYPTOCHART_RETENTION_1S. With --repair "
        "the missing ranges are fetched from Binance REST and sent through Kafka, stored by the "
        "running inserter and re-aggregated by the minute job, then audited again. Exit status "
        "0 when nothing is missing, 1 when gaps remain.",
    )
    audit.add_argument(
        "--symbols", help="comma-separated symbols, or a count (default: CRYPTOCHART_SYMBOLS)"
    )
    audit.add_argument(
        "--from",
        dest="from_",
        metavar="TIME",
        help="start: 2024-03-01T00:00 (UTC), Unix ms, or -1h / -30m (default: first stored)",
    )
    audit.add_argument("--to", metavar="TIME", help="end, exclusive (default: this minute)")
    audit.add_argument(
        "--repair", action="store_true", help="fetch the missing ranges from the exchange"
    )
    audit.add_argument(
        "--wait",
        type=float,
        metavar="SECONDS",
        default=300,
        help="with --repair: how long to wait for storage and aggregation (default: 300)",
    )
    audit.set_defaults(run=_audit)

    insert = sub.add_parser(
        "insert",
        help="write klines from Kafka into kline_1s",
        description="Consume the klines topic as a group member and upsert closed 1s klines "
        "into kline_1s in batches; offsets are committed after the database commit.",
    )
    insert.set_defaults(run=_insert)

    aggregate = sub.add_parser(
        "minute-job",
        aliases=["aggregate"],
        help="refresh kline_1m and higher intervals (alias: aggregate)",
        description="Roll 1s klines up into 1m, 5m, 15m, 1h and 1d candles over exactly the "
        "ranges that received data, as soon as each minute is final.",
    )
    aggregate.add_argument("--once", action="store_true", help="one pass, then exit")
    aggregate.set_defaults(run=_aggregate)
