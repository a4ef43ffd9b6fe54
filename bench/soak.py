"""``python -m bench.soak`` (``make soak``): the whole product, as `cryptochart run` starts it, with
the simulated source at 1,000 symbols for 30 minutes (``--minutes`` for longer), on a database and
Kafka topics of its own. Every 5 s a sample (bench/soak_sampler.py) goes into a CSV; at the end a
PNG plot and a Markdown summary (growth after the warm-up, minute freshness) are written beside
it. Every process it started is stopped and its database and topics dropped, even on Ctrl-C."""

from __future__ import annotations

import argparse
import csv
import os
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import psutil
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from tqdm import tqdm

from bench import machine
from bench.processes import Stage, spawn
from bench.scratch import scratch_settings
from bench.soak_plot import plot
from bench.soak_sampler import Sample, Sampler, columns
from bench.soak_summary import Summary, markdown, read_csv, summarise
from cryptochart.core.settings import ROOT, Settings
from cryptochart.core.symbols import parse_symbols
from cryptochart.db.migrate import FLAVOURS, Flavour
from cryptochart.devservices.ports import free_port


@dataclass(frozen=True)
class SoakOptions:
    minutes: float
    symbols: int
    interval: float  # seconds between samples
    warmup: float  # seconds left out of the summary
    window: float  # seconds of each compared window
    flavour: Flavour
    out: Path  # the CSV, PNG and Markdown go here
    logs: Path  # `cryptochart run`'s log
    progress: bool = True


@dataclass(frozen=True)
class SoakResult:
    samples: list[Sample]
    summary: Summary
    csv: Path
    png: Path
    markdown: Path
    stopped_early: bool
    processes: list[psutil.Process]  # every stage process it met (all stopped by now)


def _stop(run: Stage, sampler: Sampler) -> None:
    """Stop `cryptochart run` (it stops its stages), then any stage process still left."""
    sampler.stages()  # the stages' current process ids, to make sure of them afterwards
    run.stop(timeout=60)
    left = sampler.leftovers()
    for proc in left:
        proc.kill()
    psutil.wait_procs(left, timeout=10)


def _await_group_empty(settings: Settings) -> None:
    """Wait until the inserter's group has no member: a static member leaves only when its session
    times out, and only an empty group can be deleted with the scratch topics."""
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    group = settings.inserter_group
    deadline = time.monotonic() + settings.inserter_session_timeout_seconds + 15
    while time.monotonic() < deadline:
        try:
            if not admin.describe_consumer_groups([group])[group].result(10).members:
                return
        except KafkaException:
            return  # no such group: nothing to wait for
        time.sleep(0.5)


@contextmanager
def _product(settings: Settings, options: SoakOptions) -> Iterator[tuple[Stage, Sampler]]:
    args = ["run", "--source", "sim", "--symbols", str(options.symbols)]
    run = spawn(settings, "soak-cryptochart-run", args, options.logs)
    sampler = Sampler(settings, run.pid)
    try:
        yield run, sampler
    finally:
        _stop(run, sampler)
        sampler.close()
        _await_group_empty(settings)


def _sample_until(
    run: Stage, sampler: Sampler, options: SoakOptions, writer: csv.DictWriter[str]
) -> tuple[list[Sample], bool]:
    """Sample every ``interval`` until the duration is over; True as well when interrupted."""
    samples: list[Sample] = []
    duration = options.minutes * 60
    start = time.monotonic()
    due = start
    bar = tqdm(total=round(duration), unit="s", disable=not options.progress, desc="soak")
    try:
        while (elapsed := time.monotonic() - start) <= duration:
            if not run.alive():
                raise RuntimeError(f"cryptochart run exited:\n{run.tail()}")
            sample = sampler.sample(elapsed)
            samples.append(sample)
            writer.writerow({"elapsed_s": f"{elapsed:.1f}", **_cells(sample)})
            bar.update(round(elapsed) - bar.n)
            due += options.interval
            time.sleep(max(0.0, due - time.monotonic()))  # the sampling period
    except KeyboardInterrupt:
        return samples, True
    finally:
        bar.close()
    return samples, False


def _cells(sample: Sample) -> dict[str, str]:
    return {k: "" if v is None else f"{v:.6g}" for k, v in sample.values.items()}


def soak(base: Settings, options: SoakOptions) -> SoakResult:
    options.out.mkdir(parents=True, exist_ok=True)
    stem = options.out / f"soak-{options.flavour}"
    names = parse_symbols(str(options.symbols))
    started = datetime.now(UTC)
    context = machine.describe(base)
    with (
        scratch_settings(
            base, options.flavour, "soak", symbols=names, source="sim", api_port=free_port()
        ) as settings,
        stem.with_suffix(".csv").open("w", newline="", buffering=1) as table,  # per row
        _product(settings, options) as (run, sampler),
    ):
        writer = csv.DictWriter(table, ["elapsed_s", *columns()])
        writer.writeheader()
        samples, stopped_early = _sample_until(run, sampler, options, writer)
    summary = summarise(samples, columns(), options.warmup, options.window)
    title = (
        f"soak: cryptochart run, simulated source, {options.symbols:,} symbols, "
        f"{options.flavour}, {started:%Y-%m-%d %H:%M} UTC"
    )
    plot(samples, options.warmup, title, stem.with_suffix(".png"))
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    context += [
        f"started {started:%Y-%m-%d %H:%M} UTC, {options.minutes:g} min"
        + (" (stopped early)" if stopped_early else "")
        + f", a sample every {options.interval:g} s, warm-up {options.warmup / 60:g} min "
        f"excluded, windows of {options.window / 60:g} min; load average at the end: {load}",
        f"`cryptochart run --source sim --symbols {options.symbols}` on {options.flavour}, "
        "its own database and topics; PostgreSQL counts the postmaster, its background "
        "processes and this database's backends (shared memory counted in each; its open files "
        "without its cache of open table and index files, postgres_relation_files, which each "
        "process keeps up to max_files_per_process and which follows the tables and chunks "
        "touched; postgres_backends: the connections the stages hold), Kafka the broker's JVM "
        "(shared with other users of the broker)",
    ]
    text = markdown(summary, f"Soak: {options.symbols:,} symbols, {options.flavour}", context)
    stem.with_suffix(".md").write_text(text)
    return SoakResult(
        samples,
        summary,
        stem.with_suffix(".csv"),
        stem.with_suffix(".png"),
        stem.with_suffix(".md"),
        stopped_early,
        list(sampler.seen.values()),
    )


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the soak as Ctrl-C does: cleanly, with a summary


def _resummarise(path: Path, warmup: float, window: float) -> int:
    samples = read_csv(path)
    summary = summarise(samples, columns(), warmup, window)
    heading = f"Soak: {path.name}, warm-up {warmup / 60:g} min"
    print(markdown(summary, heading, [f"summarised again from {path}"]))
    return 0 if summary.met else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak",
        description="Run the whole product (cryptochart run, simulated source) for a long while "
        "and sample each process's memory and open files, the inserter's consumer lag, minute "
        "freshness and the API's status; write a CSV, a PNG plot and a Markdown summary.",
    )
    parser.add_argument("--minutes", type=float, default=30.0, help="how long (default 30)")
    parser.add_argument("--symbols", type=int, default=1000, help="simulated symbols (1000)")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between samples (5)")
    parser.add_argument(
        "--warmup-minutes", type=float, default=5.0, help="left out of the summary (5)"
    )
    parser.add_argument(
        "--window-minutes", type=float, default=5.0, help="each compared window (5)"
    )
    parser.add_argument("--flavour", choices=FLAVOURS, default="timescaledb")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results", help="where the files go"
    )
    parser.add_argument(
        "--from-csv",
        type=Path,
        help="print a finished run's summary again (the warm-up and windows given); runs nothing",
    )
    args = parser.parse_args(argv)
    if args.from_csv is not None:
        return _resummarise(args.from_csv, args.warmup_minutes * 60, args.window_minutes * 60)
    if args.minutes <= 0 or args.interval <= 0 or args.symbols <= 0:
        parser.error("--minutes, --interval and --symbols must be positive")
    logs = Path(tempfile.mkdtemp(prefix="cryptochart-soak-"))
    options = SoakOptions(
        minutes=args.minutes,
        symbols=args.symbols,
        interval=args.interval,
        warmup=args.warmup_minutes * 60,
        window=args.window_minutes * 60,
        flavour=args.flavour,
        out=args.out,
        logs=logs,
        progress=sys.stderr.isatty(),
    )
    signal.signal(signal.SIGTERM, _interrupt)
    print(f"soak: {options.minutes:g} min, logs in {logs}", file=sys.stderr)
    result = soak(replace(Settings.from_env()), options)
    print(result.markdown.read_text())
    print(f"wrote {result.csv}, {result.png}, {result.markdown}", file=sys.stderr)
    return 0 if result.summary.met and not result.stopped_early else 1


if __name__ == "__main__":
    sys.exit(main())
