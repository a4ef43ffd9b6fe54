"""B4: the history API under load — 1,440 one-minute candles per chart view, served as two
requests of 720 (the API returns at most 1,000 candles per request), measured with `wrk` in its
own process. Next to it, the same wrk against ``/health`` on the same server: the framework's
floor without a query.

The data: one day of 1s klines per symbol written by the inserter's own write_batch, rolled up by
the minute job, ending at the current second. The API runs as `cryptochart serve` with its
per-client rate limit raised (CRYPTOCHART_API_RATE_LIMIT_PER_MINUTE), since wrk is one client
address and the shipped limit would answer 429 after its first second; the limiter stays in.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path

import psycopg

from bench import klines as sim
from bench.live_api import free_port, wait_ready
from bench.processes import spawn
from bench.profiling import StageProfile
from bench.results import Outcome, RunOptions, ms, rate
from bench.scratch import scratch_settings
from cryptochart.core.settings import Settings
from cryptochart.ingest.inserter import staging_rows, write_batch
from cryptochart.ingest.minute_job import MinuteJob

TARGET_P99_MS = 15.0
TARGET_RPS = 1_000
PAGE = 720  # candles per request; two make the 1,440 of a day
DAY_S = 86_400
CONNECTIONS = 8
RATE_LIMIT_PER_MINUTE = 1_000_000_000

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass
class WrkResult:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    bad: int  # non-2xx answers and socket errors


def _duration_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not match:
        raise ValueError(f"wrk duration {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk(url: str, paths: list[str], seconds: float, logs: Path, name: str) -> WrkResult:
    """``wrk --latency`` with one thread and CONNECTIONS connections, cycling through ``paths``."""
    script = logs / f"{name}.lua"
    script.write_text(
        f"local paths = {json.dumps(paths).replace('[', '{').replace(']', '}')}\n"
        "local i = 0\n"
        "request = function()\n"
        "  i = i % #paths + 1\n"
        '  return wrk.format("GET", paths[i])\n'
        "end\n"
    )
    cmd = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds:.0f}s", "--latency", "-s", str(script)]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    (logs / f"{name}.txt").write_text(out)
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.MULTILINE))
    total = re.search(r"(\d+) requests in", out)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not (latency and total and rps):
        raise RuntimeError(f"cannot read wrk's output:\n{out}")
    bad = int(non_2xx.group(1)) if non_2xx else 0
    bad += sum(int(g) for g in errors.groups()) if errors else 0
    return WrkResult(
        float(rps.group(1)),
        _duration_ms(latency["50"]),
        _duration_ms(latency["99"]),
        int(total.group(1)),
        bad,
    )


def fill_day(settings: Settings, names: tuple[str, ...], seconds: int = DAY_S) -> int:
    """A day (or ``seconds``) of 1s klines up to now through write_batch, then the minute job's
    roll-up."""
    now_s = int(time.time())
    klines = sim.history(names, seconds, start_ms=(now_s - seconds) * 1000)
    with psycopg.connect(settings.database_url) as conn:
        for i in range(0, len(klines), 5_000):
            write_batch(conn, staging_rows(enumerate(klines[i : i + 5_000])))
        MinuteJob(settings).run_once(conn)
    return len(klines)


def _get(url: str) -> list[list[object]]:
    with urllib.request.urlopen(url, timeout=10) as response:
        rows: list[list[object]] = json.loads(response.read())
        return rows


def run(base: Settings, options: RunOptions) -> Outcome:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed: scripts/setup.sh --bench")
    count, seconds = (1, 3.0) if options.quick else (4, 10.0)
    out = Outcome("B4", "history API, 1,440 x 1m candles per view")
    names = sim.symbols(count)
    with scratch_settings(base, options.flavour, "b4", symbols=names) as settings:
        settings = replace(settings, api_port=free_port())
        rows = fill_day(settings, names)
        api = spawn(
            settings,
            "b4-api",
            ["serve", "--log-level", "warning"],
            options.logs,
            CRYPTOCHART_API_RATE_LIMIT_PER_MINUTE=str(RATE_LIMIT_PER_MINUTE),
        )
        try:
            wait_ready(settings, api)
            root = f"http://127.0.0.1:{settings.api_port}"
            paths = []
            for symbol in names:
                newest = f"/api/v1/klines?symbol={symbol}&interval=1m&limit={PAGE}"
                page = _get(root + newest)
                older = f"{newest}&endTime={int(str(page[0][0])) - 1}"
                previous = _get(root + older)
                if len(page) != PAGE or len(previous) != PAGE:
                    raise RuntimeError(f"{symbol}: pages of {len(page)} and {len(previous)}")
                paths += [newest, older]
            floor = wrk(root, ["/health"], seconds, options.logs, "b4-health")
            profile = StageProfile(options.profile, "b4-api", api.pid, seconds)
            history = wrk(root, paths, seconds, options.logs, "b4-history")
            profile.report()
        finally:
            api.stop()
    out.add(
        f"p50 per request of {PAGE} candles",
        ms(history.p50_ms),
        value=history.p50_ms,
        better="lower",
    )
    out.add(
        f"p99 per request of {PAGE} candles",
        ms(history.p99_ms),
        f"< {TARGET_P99_MS:.0f} ms",
        history.p99_ms < TARGET_P99_MS,
        value=history.p99_ms,
        better="lower",
    )
    out.add(
        "requests/s",
        rate(history.requests_per_s, "req/s"),
        f"≥ {TARGET_RPS:,} req/s",
        history.requests_per_s >= TARGET_RPS,
        value=history.requests_per_s,
        better="higher",
    )
    out.add("1,440-candle views/s (two requests each)", rate(history.requests_per_s / 2, "views/s"))
    out.add(
        "baseline: GET /health on the same server, p50 / p99, req/s",
        f"{ms(floor.p50_ms)} / {ms(floor.p99_ms)}, {rate(floor.requests_per_s, 'req/s')}",
    )
    out.note(
        f"wrk 1 thread, {CONNECTIONS} connections, {seconds:.0f} s per run; {history.requests:,} "
        f"history requests, {history.bad} failed; {count} symbols x a day of 1s klines "
        f"({rows:,} rows) rolled up by the minute job"
    )
    return out
