"""B5: how many symbols at one kline per second the whole pipeline sustains on this machine with
less than half of its CPU — producer, inserter, minute job and API (as `cryptochart` children),
PostgreSQL (postmaster, background processes and this database's backends) and Kafka (the whole
broker JVM, shared with other users, counted in full).

The symbol count steps up while one pipeline keeps running (only the producer is restarted with
more symbols); each step is measured for a window after a warm-up. A step is sustained when the
inserter keeps up (the newest complete second in kline_1s is at most LAG_LIMIT_S old at the end).
The smallest step is the baseline: the same pipeline's cost at a light load.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import psycopg

from bench import klines as sim
from bench.live_api import live_pipeline
from bench.processes import CpuMeter, kafka_processes, pids, postgres_processes, spawn
from bench.results import Outcome, RunOptions
from bench.scratch import dbname
from cryptochart.settings import Settings

TARGET_SYMBOLS = 1_000
CPU_LIMIT = 50.0  # % of the whole box
LAG_LIMIT_S = 3.0
STEPS = (250, 1_000, 2_000, 3_000, 4_000, 6_000)
QUICK_STEPS = (100, 500)


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


def run(base: Settings, options: RunOptions) -> Outcome:
    steps, warm, window = (QUICK_STEPS, 5.0, 10.0) if options.quick else (STEPS, 8.0, 25.0)
    out = Outcome("B5", "symbols sustained at 1 msg/s with total CPU < 50 %")
    results: list[Step] = []
    with live_pipeline(base, "b5", steps[0], options.logs) as (settings, stages):
        for count in steps:
            stages["producer"].stop()
            names = sim.symbols(count)
            stepped = replace(settings, symbols=names)
            stages["producer"] = spawn(
                stepped, f"b5-producer-{count}", ["produce", "--source", "sim"], options.logs
            )
            time.sleep(warm)
            meter = CpuMeter(
                {name: pids(stage.pid) for name, stage in stages.items()}
                | {
                    "postgres": lambda: postgres_processes(settings, dbname(settings)),
                    "kafka": lambda: kafka_processes(settings),
                }
            )
            meter.start()
            deadline = time.monotonic() + window
            while time.monotonic() < deadline:
                time.sleep(0.5)
                meter.sample()
            meter.stop()
            step = Step(count, meter.percent_of_box(), ingest_lag(settings, count))
            results.append(step)
            print(
                f"  {count:,} symbols: CPU {step.total:.0f}% of the box, lag {step.lag_s:.1f} s",
                flush=True,
            )
            if not step.sustained:
                break
    passed = [s for s in results if s.sustained]
    best = max((s.symbols for s in passed), default=0)
    out.add(
        "largest step sustained",
        f"{best:,} symbols",
        f"≥ {TARGET_SYMBOLS:,} symbols",
        best >= TARGET_SYMBOLS,
    )
    for step in results:
        label = "baseline: " if step is results[0] else ""
        verdict = "sustained" if step.sustained else "NOT sustained"
        out.add(
            f"{label}{step.symbols:,} symbols: CPU % of box, ingest lag",
            f"{step.total:.0f}%, {step.lag_s:.1f} s ({verdict})",
        )
    for step in results:
        out.note(
            f"{step.symbols:,} symbols, CPU % of the box: "
            + ", ".join(f"{g} {p:.1f}" for g, p in step.cpu.items())
        )
    out.note(
        f"steps of {window:.0f} s after {warm:.0f} s of warm-up; the minute job's roll-up "
        "falls in a window or not (one per minute); Kafka is the whole shared broker"
    )
    return out
