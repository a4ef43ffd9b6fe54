"""B4: the history API under load — 1,440 one-minute candles per chart view, served as two
requests of 720 (the API returns at most 1,000 candles per request), measured with `wrk` in its
own process; then 1s pages of 1,000 rows an hour back (final pages). The API keeps final pages
in its page cache (CRYPTOCHART_API_HISTORY_CACHE_BYTES); the same loads on an API with the cache
off are measured next to them, and wrk against ``/health`` on the same server gives the
framework's floor without a query.

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
from bench.live_api import wait_ready
from bench.processes import spawn
from bench.profiling import StageProfile
from bench.results import Outcome, RunOptions, ms, rate
from bench.scratch import scratch_settings
from cryptochart.core.settings import Settings
from cryptochart.devservices.ports import free_port
from cryptochart.ingest.inserter import staging_rows, write_batch
from cryptochart.ingest.minute_job import MinuteJob

TARGET_P99_MS = 15.0
TARGET_RPS = 1_000
PAGE = 720  # candles per request; two make the 1,440 of a day
SECOND_PAGE = 1_000  # 1s candles per request: the most one request returns
SECOND_PAGES = 3  # final 1s pages per symbol
CACHE_BYTES = 64 * 1024 * 1024  # CRYPTOCHART_API_HISTORY_CACHE_BYTES's default
NO_CACHE = 1  # a budget no page fits in
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


@dataclass
class Loads:
    """One API's answers: the 1m views (newest and older page) and the older 1s pages."""

    views: WrkResult
    seconds: WrkResult


def _paths(root: str, names: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """Per symbol: its newest 1m page and the one before it; and SECOND_PAGES 1s pages of
    SECOND_PAGE rows walking back from an hour ago (final, so the cache may keep them)."""
    views, seconds = [], []
    for symbol in names:
        newest = f"/api/v1/klines?symbol={symbol}&interval=1m&limit={PAGE}"
        page = _get(root + newest)
        older = f"{newest}&endTime={int(str(page[0][0])) - 1}"
        previous = _get(root + older)
        if len(page) != PAGE or len(previous) != PAGE:
            raise RuntimeError(f"{symbol}: pages of {len(page)} and {len(previous)}")
        views += [newest, older]
        end = int(str(page[-1][0])) - 3_600_000
        for _ in range(SECOND_PAGES):
            path = f"/api/v1/klines?symbol={symbol}&interval=1s&limit={SECOND_PAGE}&endTime={end}"
            rows = _get(root + path)
            if len(rows) != SECOND_PAGE:
                raise RuntimeError(f"{symbol}: a 1s page of {len(rows)} rows")
            seconds.append(path)
            end = int(str(rows[0][0])) - 1
    return views, seconds


def _load(
    settings: Settings, options: RunOptions, names: tuple[str, ...], seconds: float, cache: int
) -> tuple[Loads, WrkResult | None]:
    """An API with ``cache`` bytes of page cache under wrk: the views, then the 1s pages; with
    the cache on, /health first (the framework's floor)."""
    name = "b4-api" if cache > NO_CACHE else "b4-api-uncached"
    api = spawn(
        settings,
        name,
        ["serve", "--log-level", "warning"],
        options.logs,
        CRYPTOCHART_API_RATE_LIMIT_PER_MINUTE=str(RATE_LIMIT_PER_MINUTE),
        CRYPTOCHART_API_HISTORY_CACHE_BYTES=str(cache),
    )
    try:
        wait_ready(settings, api)
        root = f"http://127.0.0.1:{settings.api_port}"
        views, second_pages = _paths(root, names)
        floor = (
            wrk(root, ["/health"], seconds, options.logs, "b4-health") if cache > NO_CACHE else None
        )
        profile = StageProfile(options.profile, name, api.pid, seconds)
        history = wrk(root, views, seconds, options.logs, f"{name}-views")
        profile.report()
        profile = StageProfile(options.profile, f"{name}-1s", api.pid, seconds)
        paged = wrk(root, second_pages, seconds, options.logs, f"{name}-1s")
        profile.report()
    finally:
        api.stop()
    return Loads(history, paged), floor


def run(base: Settings, options: RunOptions) -> Outcome:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed: scripts/setup.sh --bench")
    count, seconds = (1, 3.0) if options.quick else (4, 10.0)
    out = Outcome("B4", "history API, 1,440 x 1m candles per view")
    names = sim.symbols(count)
    with scratch_settings(base, options.flavour, "b4", symbols=names) as settings:
        settings = replace(settings, api_port=free_port())
        rows = fill_day(settings, names)
        cached, floor = _load(settings, options, names, seconds, CACHE_BYTES)
        uncached, _ = _load(settings, options, names, seconds, NO_CACHE)
    assert floor is not None
    history = cached.views
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
        f"1s pages of {SECOND_PAGE:,} rows: p50 / p99, req/s",
        _figures(cached.seconds),
        f"p99 < {TARGET_P99_MS:.0f} ms, ≥ {TARGET_RPS:,} req/s",
        cached.seconds.p99_ms < TARGET_P99_MS and cached.seconds.requests_per_s >= TARGET_RPS,
        value=cached.seconds.requests_per_s,
        better="higher",
    )
    out.add(f"page cache off: {PAGE}-candle views p50 / p99, req/s", _figures(uncached.views))
    out.add(f"page cache off: 1s pages of {SECOND_PAGE:,} rows", _figures(uncached.seconds))
    out.add("baseline: GET /health on the same server, p50 / p99, req/s", _figures(floor))
    failed = history.bad + cached.seconds.bad
    out.note(
        f"wrk 1 thread, {CONNECTIONS} connections, {seconds:.0f} s per run; {history.requests:,} "
        f"view requests and {cached.seconds.requests:,} 1s pages ({failed} failed); "
        f"each view is the newest {PAGE} candles (the forming one read each time, the rest "
        f"cached) and the {PAGE} before them (final: cached); "
        f"{count * SECOND_PAGES} final 1s pages; {count} symbols x a day of 1s klines "
        f"({rows:,} rows) rolled up by the minute job; the same loads on an API with "
        "CRYPTOCHART_API_HISTORY_CACHE_BYTES=1 for the cache-off figures"
    )
    return out


def _figures(result: WrkResult) -> str:
    return f"{ms(result.p50_ms)} / {ms(result.p99_ms)}, {rate(result.requests_per_s, 'req/s')}"
