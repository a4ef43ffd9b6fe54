"""B2 (end-to-end latency) and B6 (API memory): the whole pipeline live, 1,000 WebSocket clients,
then 5,000 (p99 < 150 ms, RSS < 400 MB) on the same pipeline.

The producer (simulated source, live pace), inserter, minute job and API run as the product's own
`cryptochart` children; the clients run in another process (``bench.ws_clients``). Next to the
end-to-end latency, a plain Kafka consumer in this process measures the same emit → Kafka hop
alone, so the API's share is visible (and a second one waiting for full batches, as the API's
intake did before 5bfa457); next to the API's RSS with the clients, its RSS with the
same feed and no client.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import psutil
from confluent_kafka import OFFSET_END, Consumer, TopicPartition

from bench import klines as sim
from bench.processes import (
    CpuMeter,
    Stage,
    kafka_processes,
    pids,
    postgres_processes,
    spawn,
    stop_all,
)
from bench.profiling import StageProfile
from bench.results import Outcome, RunOptions, ms, percentile
from bench.scratch import dbname, scratch_settings
from cryptochart.api import consumer as feed
from cryptochart.core.kline import decode
from cryptochart.core.settings import Settings
from cryptochart.devservices.ports import free_port

TARGET_P99_MS = 50.0
TARGET_RSS_MB = 150.0


def wait_ready(settings: Settings, api: Stage, timeout: float = 90) -> None:
    url = f"http://127.0.0.1:{settings.api_port}/ready"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not api.alive():
            raise RuntimeError(f"the API exited:\n{api.tail()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"the API was not ready within {timeout:.0f}s:\n{api.tail()}")


@contextmanager
def live_pipeline(
    base: Settings, options: RunOptions, label: str, count: int, *, api: bool = True
) -> Iterator[tuple[Settings, dict[str, Stage]]]:
    """A scratch database and topics with the producer (simulated, live), inserter, minute job
    and, with ``api``, the API running on them; all stopped and dropped on exit."""
    names = sim.symbols(count)
    logs = options.logs
    with scratch_settings(base, options.flavour, label, symbols=names, source="sim") as settings:
        settings = replace(settings, api_port=free_port())
        stages: dict[str, Stage] = {}
        try:
            stages["inserter"] = spawn(settings, f"{label}-inserter", ["insert"], logs)
            stages["minute job"] = spawn(settings, f"{label}-minute-job", ["aggregate"], logs)
            if api:
                # B2's clients all come from one address: the per-address cap is out of the way.
                stages["api"] = spawn(
                    settings,
                    f"{label}-api",
                    ["serve", "--log-level", "warning"],
                    logs,
                    CRYPTOCHART_API_WS_PER_ADDRESS="100000",
                )
                wait_ready(settings, stages["api"])
            stages["producer"] = spawn(
                settings, f"{label}-producer", ["produce", "--source", "sim"], logs
            )
            yield settings, stages
        finally:
            stop_all(reversed(stages.values()))


def kafka_latencies(
    settings: Settings, seconds: float, out: list[float], batch: int = 1, wait: float = 0.1
) -> None:
    """Source emit → this consumer, for every kline on the topic during ``seconds``, taking
    messages with ``consume(num_messages=batch, timeout=wait)``."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"{settings.klines_topic}.probe",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 10,
        }
    )
    topic = consumer.list_topics(settings.klines_topic, timeout=10).topics[settings.klines_topic]
    consumer.assign(
        [TopicPartition(settings.klines_topic, p, OFFSET_END) for p in topic.partitions]
    )
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for msg in consumer.consume(num_messages=batch, timeout=wait):
            now = time.time() * 1000
            if msg.error() is None:
                out.append(now - decode(msg.value() or b"").event_time)
    consumer.close()


def gc_pauses(settings: Settings) -> dict[str, tuple[float, float, float]]:
    """The API's garbage collector passes so far, by generation: (passes, seconds, passes over
    50 ms), from its ``cryptochart_api_gc_pause_seconds`` histogram."""
    url = f"http://127.0.0.1:{settings.api_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    samples: dict[tuple[str, str], float] = {}  # (generation, series) -> value
    for line in text.splitlines():
        if line.startswith("cryptochart_api_gc_pause_seconds"):
            name, value = line.rsplit(" ", 1)
            generation = name.split('generation="')[1].split('"')[0]
            series = "le=0.05" if 'le="0.05"' in name else name.split("{")[0].rsplit("_", 1)[1]
            samples[generation, series] = float(value)
    return {
        g: (samples[g, "count"], samples[g, "sum"], samples[g, "count"] - samples[g, "le=0.05"])
        for g, series in samples
        if series == "count"
    }


def gc_during(
    before: dict[str, tuple[float, float, float]], after: dict[str, tuple[float, float, float]]
) -> str:
    parts = []
    for generation in sorted(after):
        count, seconds, slow = (
            a - b for a, b in zip(after[generation], before.get(generation, (0, 0, 0)), strict=True)
        )
        mean = seconds / count * 1000 if count else 0.0
        parts.append(
            f"generation {generation}: {count:.0f} passes, mean {mean:.1f} ms, "
            f"{slow:.0f} over 50 ms"
        )
    return "; ".join(parts) or "none"


def _runqueue_ms(pid: int) -> float:
    """How long ``pid``'s main thread (the API's event loop) has been runnable but waiting for a
    core, in ms (the second field of /proc/PID/schedstat)."""
    with open(f"/proc/{pid}/schedstat") as stat:
        return int(stat.read().split()[1]) / 1e6


def _rss_mb(pid: int) -> float:
    return float(psutil.Process(pid).memory_info().rss) / 2**20


@dataclass(frozen=True)
class Step:
    """A number of WebSocket clients, and the targets of B2's p99 and B6's RSS with them."""

    clients: int
    p99_ms: float
    rss_mb: float


# B2/B6 as first set, then the step the product should also carry on this box.
STEPS = (Step(1_000, TARGET_P99_MS, TARGET_RSS_MB), Step(5_000, 150.0, 400.0))
QUICK_STEPS = (Step(200, TARGET_P99_MS, TARGET_RSS_MB),)


@dataclass
class Measured:
    step: Step
    result: dict[str, Any]  # bench.ws_clients' figures
    via_kafka: list[float]
    via_batches: list[float]
    busy_rss: list[float]
    cpu: str
    gc: str
    cpu_wait: str


def measure(
    settings: Settings,
    stages: dict[str, Stage],
    options: RunOptions,
    step: Step,
    seconds: float,
    deflate: bool,
) -> Measured:
    """``step.clients`` clients following the feed for ``seconds``, the Kafka probes beside."""
    api = stages["api"]
    result_file = options.logs / f"ws_clients-{step.clients}.json"
    url = f"ws://127.0.0.1:{settings.api_port}/ws"
    clients_proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.ws_clients",
            url,
            str(result_file),
            "--clients",
            str(step.clients),
            "--seconds",
            str(seconds),
            "--symbols",
            ",".join(settings.symbols),
            *([] if deflate else ["--no-deflate"]),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert clients_proc.stdout is not None
    line = clients_proc.stdout.readline()  # "ready N" once every client is subscribed
    if not line.startswith("ready"):
        clients_proc.wait(60)
        raise RuntimeError(f"ws clients failed: {line!r}\n{api.tail()}")
    via_kafka: list[float] = []
    via_batches: list[float] = []
    probes = [
        threading.Thread(target=kafka_latencies, args=(settings, seconds, via_kafka)),
        threading.Thread(
            target=kafka_latencies,
            args=(settings, seconds, via_batches, feed.BATCH, feed.POLL_SECONDS),
        ),
    ]
    for probe in probes:
        probe.start()
    meter = CpuMeter(
        {name: pids(stage.pid) for name, stage in stages.items()}
        | {
            "ws clients": pids(clients_proc.pid),
            "postgres": lambda: postgres_processes(settings, dbname(settings)),
            "kafka": lambda: kafka_processes(settings),
        }
    )
    meter.start()
    collected = gc_pauses(settings)
    profile = StageProfile(options.profile, f"b2-api-{step.clients}", api.pid, seconds)
    busy = []
    waited = [_runqueue_ms(api.pid)]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        busy.append(_rss_mb(api.pid))
        meter.sample()
        time.sleep(0.5)
        waited.append(_runqueue_ms(api.pid))
    meter.stop()
    steps = [b - a for a, b in itertools.pairwise(waited)]
    cpu_wait = f"{waited[-1] - waited[0]:,.0f} ms in all, at most {max(steps):,.0f} ms in 0.5 s"
    gc = gc_during(collected, gc_pauses(settings))
    profile.report()
    for probe in probes:
        probe.join()
    clients_proc.wait(120)
    result = json.loads(result_file.read_text())
    if not result["since_event_ms"] or not via_kafka:
        raise RuntimeError(f"no frames measured: {result.get('errors')}")
    cpu = ", ".join(f"{name} {p:.0f}%" for name, p in meter.percent_of_box().items())
    return Measured(step, result, via_kafka, via_batches, busy, cpu, gc, cpu_wait)


def run_both(base: Settings, options: RunOptions, deflate: bool = True) -> tuple[Outcome, Outcome]:
    count, seconds = (100, 8.0) if options.quick else (500, 30.0)
    b2 = Outcome("B2", "end-to-end latency, source emit → WebSocket frame")
    b6 = Outcome("B6", "API memory with WebSocket clients")
    with live_pipeline(base, options, "b2", count) as (settings, stages):
        api = stages["api"]
        time.sleep(3.0)  # the first seconds flow through every stage
        idle = [_rss_mb(api.pid)]
        for _ in range(10):
            time.sleep(0.3)
            idle.append(_rss_mb(api.pid))
        steps = QUICK_STEPS if options.quick else STEPS
        measured = [measure(settings, stages, options, step, seconds, deflate) for step in steps]
    for m in measured:
        report_latency(b2, m, count, seconds, detailed=m is measured[0])
        report_memory(b6, m, max(idle), with_baseline=m is measured[0])
    b2.note(
        "each client follows one symbol's 1s klines (clients spread evenly over the symbols); "
        "the producer, inserter and minute job run too; latency = receive time - eventTime "
        "(set by the simulated source at emit), one clock; the steps run one after another on "
        "the same pipeline"
    )
    return b2, b6


def report_latency(b2: Outcome, m: Measured, count: int, seconds: float, detailed: bool) -> None:
    result, step = m.result, m.step
    end_to_end: list[float] = result["since_event_ms"]
    p50, p99 = percentile(end_to_end, 50), percentile(end_to_end, 99)
    k50, k99 = percentile(m.via_kafka, 50), percentile(m.via_kafka, 99)
    scale = f"{count} symbols x {step.clients:,} clients"
    b2.add(f"p50, {scale}", ms(p50), value=p50, better="lower")
    b2.add(
        f"p99, {scale}",
        ms(p99),
        f"< {step.p99_ms:.0f} ms",
        p99 < step.p99_ms,
        value=p99,
        better="lower",
    )
    b2.add(
        f"baseline ({step.clients:,}): p50 / p99, emit → plain Kafka consumer",
        f"{ms(k50)} / {ms(k99)}",
    )
    if detailed:
        b2.add(
            f"baseline: the same consumer waiting for full batches, consume({feed.BATCH}, "
            f"timeout={feed.POLL_SECONDS}) (the API's intake before 5bfa457)",
            f"{ms(percentile(m.via_batches, 50))} / {ms(percentile(m.via_batches, 99))}",
        )
    b2.add(
        f"API's share ({step.clients:,}): p50 / p99 minus Kafka's",
        f"{ms(p50 - k50)} / {ms(p99 - k99)}",
    )
    sent = result["since_sent_ms"]
    intake = [a - b for a, b in zip(end_to_end, sent, strict=True)]
    b2.add(
        f"of which emit → API hub (sentTime - eventTime), p50 / p99 ({step.clients:,})",
        f"{ms(percentile(intake, 50))} / {ms(percentile(intake, 99))}",
    )
    b2.add(
        f"of which API send → client receive, p50 / p99 ({step.clients:,})",
        f"{ms(percentile(sent, 50))} / {ms(percentile(sent, 99))}",
    )
    arrived = result["arrived_since_event_ms"]
    b2.add(
        f"emit → arrival at the client's socket (kernel receive time), p50 / p99 "
        f"({step.clients:,}): the latency without the one client process's own reading",
        f"{ms(percentile(arrived, 50))} / {ms(percentile(arrived, 99))}",
    )
    expected = result["subscribed"] * seconds
    lag = result["loop_lag_ms"]
    b2.note(f"{step.clients:,} clients, per emitted second: {_spread(result)}")
    b2.note(
        f"{step.clients:,} clients: {result['frames']:,} kline frames in {seconds:.0f} s "
        f"({result['frames'] / expected:.0%} of one per client and second); max "
        f"{max(end_to_end):,.0f} ms; {result['error_count']} client errors; "
        f"{result['subscribed']:,} clients connected in {result['connect_seconds']:.1f} s; "
        f"CPU while measuring, % of the whole box: {m.cpu}; the clients' own event-loop lag "
        f"(their share of the figure): p50 {ms(percentile(lag, 50))}, "
        f"p99 {ms(percentile(lag, 99))}; the API's garbage collections: {m.gc}; the API's "
        f"event loop runnable but waiting for a core: {m.cpu_wait}"
    )


def _spread(result: dict[str, Any]) -> str:
    """How each second's frames spread (a burst fanned out one by one) against whole seconds
    arriving late (a stall): the seconds' p50 of their fastest, median and slowest frame, and
    the slowest second's median."""
    seconds: dict[int, list[float]] = {}
    for event_time, latency in zip(result["event_times"], result["since_event_ms"], strict=True):
        seconds.setdefault(event_time // 1000, []).append(latency)
    firsts, medians, lasts = [], [], []
    for latencies in seconds.values():
        latencies.sort()
        firsts.append(latencies[0])
        medians.append(latencies[len(latencies) // 2])
        lasts.append(latencies[-1])
    return (
        f"first frame {ms(percentile(firsts, 50))}, median {ms(percentile(medians, 50))}, "
        f"last {ms(percentile(lasts, 50))}; the slowest second's median {ms(max(medians))}"
    )


def report_memory(b6: Outcome, m: Measured, base_rss: float, with_baseline: bool) -> None:
    peak, clients = max(m.busy_rss), m.step.clients
    b6.add(
        f"API RSS with {clients:,} clients (peak)",
        f"{peak:.0f} MB",
        f"< {m.step.rss_mb:.0f} MB",
        peak < m.step.rss_mb,
        value=peak,
        better="lower",
    )
    if with_baseline:
        b6.add("baseline: the same API, same feed, no client", f"{base_rss:.0f} MB")
    subscribed = max(1, m.result["subscribed"])
    b6.add(f"per client ({clients:,})", f"{(peak - base_rss) * 1024 / subscribed:.0f} KB")


_cache: dict[RunOptions, tuple[Outcome, Outcome]] = {}


def _once(base: Settings, options: RunOptions) -> tuple[Outcome, Outcome]:
    """B2 and B6 come from one scenario, run once however many of them are asked for."""
    if options not in _cache:
        _cache[options] = run_both(base, options)
    return _cache[options]


def run_latency(base: Settings, options: RunOptions) -> Outcome:
    return _once(base, options)[0]


def run_memory(base: Settings, options: RunOptions) -> Outcome:
    return _once(base, options)[1]
