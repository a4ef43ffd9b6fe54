"""B2 (end-to-end latency) and B6 (API memory): the whole pipeline live, 1,000 WebSocket clients.

The producer (simulated source, live pace), inserter, minute job and API run as the product's own
`cryptochart` children; the clients run in another process (``bench.ws_clients``). Next to the
end-to-end latency, a plain Kafka consumer in this process measures the same emit → Kafka hop
alone, so the API's share is visible (and a second one waiting for full batches, as the API's
intake did before 5bfa457); next to the API's RSS with the clients, its RSS with the
same feed and no client.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

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

TARGET_P99_MS = 50.0
TARGET_RSS_MB = 150.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


def _rss_mb(pid: int) -> float:
    return float(psutil.Process(pid).memory_info().rss) / 2**20


def run_both(base: Settings, options: RunOptions, deflate: bool = True) -> tuple[Outcome, Outcome]:
    count, clients, seconds = (100, 200, 8.0) if options.quick else (500, 1_000, 30.0)
    logs = options.logs
    b2 = Outcome("B2", "end-to-end latency, source emit → WebSocket frame")
    b6 = Outcome("B6", "API memory with WebSocket clients")
    with live_pipeline(base, options, "b2", count) as (settings, stages):
        api = stages["api"]
        time.sleep(3.0)  # the first seconds flow through every stage
        idle = [_rss_mb(api.pid)]
        for _ in range(10):
            time.sleep(0.3)
            idle.append(_rss_mb(api.pid))
        result_file = logs / "ws_clients.json"
        url = f"ws://127.0.0.1:{settings.api_port}/ws"
        clients_proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.ws_clients",
                url,
                str(result_file),
                "--clients",
                str(clients),
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
        profile = StageProfile(options.profile, "b2-api", api.pid, seconds)
        busy = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            busy.append(_rss_mb(api.pid))
            meter.sample()
            time.sleep(0.5)
        meter.stop()
        profile.report()
        for probe in probes:
            probe.join()
        clients_proc.wait(120)
        result = json.loads(result_file.read_text())
    end_to_end: list[float] = result["since_event_ms"]
    if not end_to_end or not via_kafka:
        raise RuntimeError(f"no frames measured: {result.get('errors')}")
    p50, p99 = percentile(end_to_end, 50), percentile(end_to_end, 99)
    k50, k99 = percentile(via_kafka, 50), percentile(via_kafka, 99)
    scale = f"{count} symbols x {clients:,} clients"
    b2.add(f"p50, {scale}", ms(p50), value=p50, better="lower")
    b2.add(
        f"p99, {scale}",
        ms(p99),
        f"< {TARGET_P99_MS:.0f} ms",
        p99 < TARGET_P99_MS,
        value=p99,
        better="lower",
    )
    b2.add("baseline: p50 / p99, emit → plain Kafka consumer", f"{ms(k50)} / {ms(k99)}")
    b2.add(
        f"baseline: the same consumer waiting for full batches, consume({feed.BATCH}, "
        f"timeout={feed.POLL_SECONDS}) (the API's intake before 5bfa457)",
        f"{ms(percentile(via_batches, 50))} / {ms(percentile(via_batches, 99))}",
    )
    b2.add("API's share: p50 / p99 minus Kafka's", f"{ms(p50 - k50)} / {ms(p99 - k99)}")
    sent = result["since_sent_ms"]
    intake = [a - b for a, b in zip(end_to_end, sent, strict=True)]
    b2.add(
        "of which emit → API hub (sentTime - eventTime), p50 / p99",
        f"{ms(percentile(intake, 50))} / {ms(percentile(intake, 99))}",
    )
    b2.add(
        "of which API send → client receive, p50 / p99",
        f"{ms(percentile(sent, 50))} / {ms(percentile(sent, 99))}",
    )
    expected = result["subscribed"] * seconds
    cpu = ", ".join(f"{name} {p:.0f}%" for name, p in meter.percent_of_box().items())
    lag = result["loop_lag_ms"]
    b2.note(
        f"{result['frames']:,} kline frames in {seconds:.0f} s ({result['frames'] / expected:.0%} "
        f"of one per client and second); max {max(end_to_end):,.0f} ms; "
        f"{result['error_count']} client errors; {result['subscribed']:,} clients connected in "
        f"{result['connect_seconds']:.1f} s"
    )
    b2.note(f"CPU while measuring, % of the whole box: {cpu}")
    b2.note(
        f"the clients' own event-loop lag (their share of the figure): p50 "
        f"{ms(percentile(lag, 50))}, p99 {ms(percentile(lag, 99))}"
    )
    b2.note(
        "each client follows one symbol's 1s klines (2 clients per symbol); the producer, "
        "inserter and minute job run too; latency = receive time - eventTime (set by the "
        "simulated source at emit), one clock"
    )
    peak, base_rss = max(busy), max(idle)
    b6.add(
        f"API RSS with {clients:,} clients (peak)",
        f"{peak:.0f} MB",
        f"< {TARGET_RSS_MB:.0f} MB",
        peak < TARGET_RSS_MB,
        value=peak,
        better="lower",
    )
    b6.add("baseline: the same API, same feed, no client", f"{base_rss:.0f} MB")
    b6.add("per client", f"{(peak - base_rss) * 1024 / max(1, result['subscribed']):.0f} KB")
    return b2, b6


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
