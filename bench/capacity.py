"""B5: how many symbols at one kline per second the whole pipeline sustains on this machine with
less than half of its CPU — producer, inserter, minute job and API (as `cryptochart` children),
PostgreSQL (postmaster, background processes and this database's backends) and Kafka (the whole
broker JVM, shared with other users, counted in full).

The symbol count steps up while one pipeline keeps running (only the producer is restarted with
more symbols); each step is measured for a whole minute after a warm-up, so it holds exactly one
of the minute job's roll-ups. A step is sustained when its CPU is under the limit and the
inserter keeps up (the newest complete second in kline_1s is at most LAG_LIMIT_S old at the
end). The baseline: the same processes with no producer, for a short window (their idle cost).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import psycopg

from bench import klines as sim
from bench.live_api import live_pipeline
from bench.processes import (
    CpuMeter,
    Stage,
    kafka_processes,
    pids,
    postgres_processes,
    spawn,
)
from bench.results import Outcome, RunOptions
from bench.scratch import dbname
from cryptochart.core.settings import Settings

TARGET_SYMBOLS = 1_000
CPU_LIMIT = 50.0  # % of the whole box
LAG_LIMIT_S = 3.0
STEPS = (1_000, 2_500, 5_000, 8_000)
QUICK_STEPS = (100, 500)
IDLE_WINDOW = 10.0


@dataclass
class Step:
    symbols: int
    cpu: dict[str, float]  # % of the whole box per group
    lag_s: float

    @property
    def total(self) -> float:
        return sum(self.cpu.values())

    @property
    def sustained(self) -> bool:
        return self.total < CPU_LIMIT and self.lag_s <= LAG_LIMIT_S


def ingest_lag(settings: Settings, symbols: int) -> float:
    """Seconds between now and the open time of the newest second all symbols have written."""
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        row = conn.execute(
            """SELECT extract(epoch FROM now() - max(open_time)) FROM (
                   SELECT open_time FROM kline_1s WHERE open_time > now() - interval '1 minute'
                   GROUP BY open_time HAVING count(*) >= %s) complete""",
            (symbols,),
        ).fetchone()
    return float(str(row[0])) if row and row[0] is not None else float("inf")


def measure(settings: Settings, stages: dict[str, Stage], seconds: float) -> dict[str, float]:
    """CPU of every stage, PostgreSQL and Kafka over ``seconds``, as % of the whole box."""
    meter = CpuMeter(
        {name: pids(stage.pid) for name, stage in stages.items()}
        | {
            "postgres": lambda: postgres_processes(settings, dbname(settings)),
            "kafka": lambda: kafka_processes(settings),
        }
    )
    meter.start()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.5)
        meter.sample()
    meter.stop()
    return meter.percent_of_box()


def run(base: Settings, options: RunOptions) -> Outcome:
    steps, warm, window = (QUICK_STEPS, 5.0, 15.0) if options.quick else (STEPS, 8.0, 60.0)
    out = Outcome("B5", "symbols sustained at 1 msg/s with total CPU < 50 %")
    results: list[Step] = []
    with live_pipeline(base, options, "b5", steps[0]) as (settings, stages):
        stages["producer"].stop()
        producer = stages.pop("producer")
        idle = Step(0, measure(settings, stages, IDLE_WINDOW), 0.0)
        stages["producer"] = producer
        for count in steps:
            stages["producer"].stop()
            names = sim.symbols(count)
            stepped = replace(settings, symbols=names)
            stages["producer"] = spawn(
                stepped, f"b5-producer-{count}", ["produce", "--source", "sim"], options.logs
            )
            time.sleep(warm)
            cpu = measure(settings, stages, window)
            step = Step(count, cpu, ingest_lag(settings, count))
            results.append(step)
            print(
                f"  {count:,} symbols: CPU {step.total:.0f}% of the box, lag {step.lag_s:.1f} s",
                flush=True,
            )
            if not step.sustained:
                break
    passed = [s for s in results if s.sustained]
    best = max((s.symbols for s in passed), default=0)
    every = bool(results) and results[-1].sustained  # the ceiling lies beyond the last step
    out.add(
        "largest step sustained",
        f"≥ {best:,} symbols (every step tried)" if every else f"{best:,} symbols",
        f"≥ {TARGET_SYMBOLS:,} symbols",
        best >= TARGET_SYMBOLS,
        value=best,
        better="higher",
    )
    out.add(
        "baseline: the same processes, no producer: CPU % of box",
        f"{idle.total:.1f}%",
        value=idle.total,
        better="lower",
    )
    for step in results:
        verdict = "sustained" if step.sustained else "NOT sustained"
        out.add(
            f"{step.symbols:,} symbols: CPU % of box, ingest lag",
            f"{step.total:.0f}%, {step.lag_s:.1f} s ({verdict})",
            value=step.total,
            better="lower",
        )
    for step in [idle, *results]:
        name = f"{step.symbols:,} symbols" if step.symbols else "no producer"
        out.note(
            f"{name}, CPU % of the box: " + ", ".join(f"{g} {p:.1f}" for g, p in step.cpu.items())
        )
    out.note(
        f"steps of {window:.0f} s after {warm:.0f} s of warm-up (one minute-job roll-up each); "
        f"ingest lag = now - the newest second that all symbols have in kline_1s (≥ 1 s by "
        f"construction, limit {LAG_LIMIT_S:g} s); Kafka is the whole shared broker"
    )
    return out
