"""B8: one address floods the API while a well-behaved client from another address uses it.

The whole pipeline runs live (simulated source, its first hour as history), the API with its
shipped per-client bounds (``api/config.py``). A well-behaved client on 127.0.0.2, so it does not
share the flooder's per-address budget, reads history pages a few times a second and follows the
symbols' 1s klines live (all ten, for enough frames to read a p99 from): first quiet, then while
``bench.flood_client`` (its own process, on 127.0.0.1) hammers REST and opens sockets past every
bound, then quiet again. Compared: the well-behaved client's history p50/p99 and live-frame p99,
quiet vs flood, and the API's RSS before, at its peak and after.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import httpx
import psutil
from psycopg.conninfo import conninfo_to_dict
from websockets.asyncio.client import connect as ws_connect

from bench import klines as sim
from bench.live_api import wait_ready
from bench.processes import CpuMeter, Stage, pids, spawn, stop_all
from bench.results import Outcome, RunOptions, ms, percentile
from bench.scratch import scratch_settings
from cryptochart.api.config import ApiConfig
from cryptochart.core.database import Conn, connect
from cryptochart.core.settings import Settings
from cryptochart.devservices.ports import free_port

GOOD_ADDRESS = "127.0.0.2"
SYMBOLS = 10
HISTORY_EVERY_S = 0.2  # the well-behaved client's pace: 5 pages a second, 300 a minute
TARGET_RATIO = 2.0  # p99 under flood < 2x quiet
RSS_BOUND = 1.5  # the API's peak RSS under flood, at most this times its RSS before
QUIET, FLOOD, AFTER = "quiet", "flood", "after"
CAUGHT_UP_MS = 5_000  # every symbol's newest stored second at most this old: measuring starts


@dataclass
class Phase:
    name: str = QUIET
    history_ms: dict[str, list[float]] = field(default_factory=dict)
    live_ms: dict[str, list[float]] = field(default_factory=dict)
    refused: dict[str, int] = field(default_factory=dict)  # non-200 answers to the good client
    rss_mb: dict[str, list[float]] = field(default_factory=dict)
    busy_connections: dict[str, list[float]] = field(default_factory=dict)  # of the API's pool
    cpu: dict[str, dict[str, float]] = field(default_factory=dict)  # % of one core, per process

    def add(self, table: dict[str, list[float]], value: float) -> None:
        table.setdefault(self.name, []).append(value)


def _history_paths(symbol: str) -> list[str]:
    base = f"/api/v1/klines?symbol={symbol}"
    return [f"{base}&interval=1m&limit=60", f"{base}&interval=1s&limit=1000"]


async def _read_history(root: str, symbol: str, phase: Phase, stop: asyncio.Event) -> None:
    transport = httpx.AsyncHTTPTransport(local_address=GOOD_ADDRESS)
    async with httpx.AsyncClient(base_url=root, transport=transport, timeout=30) as client:
        paths = _history_paths(symbol)
        i = 0
        while not stop.is_set():
            started = time.perf_counter()
            response = await client.get(paths[i % len(paths)])
            took = (time.perf_counter() - started) * 1000
            if response.status_code == 200:
                phase.add(phase.history_ms, took)
            else:
                key = f"{phase.name} {response.status_code}"
                phase.refused[key] = phase.refused.get(key, 0) + 1
            i += 1
            await asyncio.sleep(max(0.0, HISTORY_EVERY_S - took / 1000))


async def _follow(url: str, symbols: list[str], phase: Phase, stop: asyncio.Event) -> None:
    async with ws_connect(url, proxy=None, local_addr=(GOOD_ADDRESS, 0)) as ws:
        await ws.send(
            json.dumps(
                {"op": "subscribe", "channel": "kline", "symbols": symbols, "interval": "1s"}
            )
        )
        while not stop.is_set():
            try:
                raw = await asyncio.wait_for(ws.recv(), 1.0)
            except TimeoutError:
                continue
            now = time.time() * 1000
            frame = json.loads(raw)
            if frame.get("type") == "kline" and not frame.get("snapshot"):
                phase.add(phase.live_ms, now - frame["eventTime"])


async def _sample_rss(pid: int, phase: Phase, stop: asyncio.Event) -> None:
    process = psutil.Process(pid)
    while not stop.is_set():
        phase.add(phase.rss_mb, process.memory_info().rss / 2**20)
        await asyncio.sleep(0.25)


def _busy_connections(conn: Conn, api: psutil.Process, port: int) -> int:
    """The API's database connections running a query now (matched by the API's own ports)."""
    ports = [
        c.laddr.port
        for c in api.net_connections("tcp")
        if c.raddr and c.status == psutil.CONN_ESTABLISHED and c.raddr.port == port
    ]
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE client_port = ANY(%s) AND state <> 'idle'",
        (ports,),
    ).fetchone()
    count = row[0] if row else 0
    return count if isinstance(count, int) else 0


async def _sample_pool(settings: Settings, pid: int, phase: Phase, stop: asyncio.Event) -> None:
    """How many of the API's pooled connections are busy, every 0.1 s."""
    api = psutil.Process(pid)
    port = int(conninfo_to_dict(settings.database_url).get("port") or 5432)
    with connect(settings.database_url) as conn:
        conn.autocommit = True
        while not stop.is_set():
            busy = await asyncio.to_thread(_busy_connections, conn, api, port)
            phase.add(phase.busy_connections, busy)
            await asyncio.sleep(0.1)


async def _measure(
    settings: Settings, api_pid: int, seconds: float, flood_cmd: list[str], phase: Phase
) -> None:
    root = f"http://127.0.0.1:{settings.api_port}"
    symbol = settings.symbols[0]  # history pages of one symbol; live frames of them all
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(_read_history(root, symbol, phase, stop)),
        asyncio.create_task(
            _follow(root.replace("http", "ws") + "/ws", list(settings.symbols), phase, stop)
        ),
        asyncio.create_task(_sample_rss(api_pid, phase, stop)),
        asyncio.create_task(_sample_pool(settings, api_pid, phase, stop)),
    ]
    quiet = CpuMeter({"API": pids(api_pid)})
    quiet.start()
    await asyncio.sleep(seconds)
    quiet.stop()
    flooder = await asyncio.create_subprocess_exec(*flood_cmd, stdout=subprocess.PIPE)
    assert flooder.stdout is not None
    await flooder.stdout.readline()  # "flooding": its loops have started
    phase.name = FLOOD
    flood = CpuMeter({"API": pids(api_pid), "flood client": pids(flooder.pid)})
    flood.start()
    while flooder.returncode is None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(flooder.wait(), 1.0)
        flood.sample()  # the client's CPU time is counted up to its last sample before exiting
    flood.stop()
    phase.name = AFTER
    cores = os.cpu_count() or 1
    for name, meter in ((QUIET, quiet), (FLOOD, flood)):
        phase.cpu[name] = {g: p * cores for g, p in meter.percent_of_box().items()}
    await asyncio.sleep(seconds / 2)
    stop.set()
    await asyncio.gather(*tasks)
    if flooder.returncode:
        raise RuntimeError(f"the flood client exited with {flooder.returncode}")


def _caught_up(root: str, symbols: list[str]) -> bool:
    """The first hour is served and every symbol's newest stored second is live: the history
    the producer started with has gone through Kafka, so live frames are live ones."""
    try:
        history = httpx.get(f"{root}{_history_paths(symbols[0])[0]}", timeout=5)
        listed = httpx.get(f"{root}/api/v1/symbols", timeout=5)
    except httpx.HTTPError:
        return False
    if history.status_code != 200 or len(history.json()) < 50 or listed.status_code != 200:
        return False
    newest = {s["symbol"]: s["lastTime"] for s in listed.json()}
    now_ms = time.time() * 1000
    return all(now_ms - newest.get(s, 0) < CAUGHT_UP_MS for s in symbols)


@contextmanager
def _pipeline(base: Settings, options: RunOptions) -> Iterator[tuple[Settings, Stage]]:
    """Producer (simulated, live, its first hour as history), inserter, minute job and the API
    with its shipped bounds; yields once the first hour is stored and every symbol is live."""
    names = sim.symbols(SYMBOLS)
    with scratch_settings(base, options.flavour, "b8", symbols=names, source="sim") as settings:
        settings = replace(settings, api_port=free_port())
        logs = options.logs
        stages = [
            spawn(settings, "b8-inserter", ["insert"], logs),
            spawn(settings, "b8-minute-job", ["aggregate"], logs),
            spawn(settings, "b8-api", ["serve", "--log-level", "warning"], logs),
        ]
        try:
            wait_ready(settings, stages[-1])
            stages.append(
                spawn(
                    settings, "b8-producer", ["produce", "--source", "sim", "--history=3600"], logs
                )
            )
            root = f"http://127.0.0.1:{settings.api_port}"
            deadline = time.monotonic() + 120
            while not _caught_up(root, list(names)):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"history not caught up within 120 s:\n{stages[0].tail()}")
                time.sleep(0.5)
            yield settings, stages[2]
        finally:
            stop_all(reversed(stages))


def _pair(values: dict[str, list[float]], p: float) -> tuple[float, float]:
    return percentile(values[QUIET], p), percentile(values[FLOOD], p)


def run(base: Settings, options: RunOptions) -> Outcome:
    seconds = 8.0 if options.quick else 20.0
    config = ApiConfig()
    out = Outcome("B8", "one address flooding the API, a well-behaved client's figures")
    result_file = options.logs / "flood_client.json"
    phase = Phase()
    with _pipeline(base, options) as (settings, api):
        flood_cmd = [
            sys.executable,
            "-m",
            "bench.flood_client",
            f"http://127.0.0.1:{settings.api_port}",
            str(result_file),
            "--symbols",
            ",".join(settings.symbols),
            "--seconds",
            str(seconds),
            "--per-address",
            str(config.ws_per_address),
            "--per-second",
            str(config.ws_messages_per_second),
        ]
        asyncio.run(_measure(settings, api.pid, seconds, flood_cmd, phase))
        if not api.alive():
            raise RuntimeError(f"the API died under the flood:\n{api.tail()}")
    flood: dict[str, dict[str, int]] = json.loads(result_file.read_text())
    _figures(out, phase, flood, seconds)
    return out


def _figures(
    out: Outcome, phase: Phase, flood_result: dict[str, dict[str, int]], seconds: float
) -> None:
    for p in (50, 99):
        quiet, flood = _pair(phase.history_ms, p)
        out.add(
            f"history p{p}, quiet / under flood",
            f"{ms(quiet)} / {ms(flood)}",
            f"< {TARGET_RATIO:.0f}x quiet" if p == 99 else "",
            flood < TARGET_RATIO * quiet if p == 99 else None,
            value=flood,
            better="lower",
        )
    quiet, flood = _pair(phase.live_ms, 99)
    out.add(
        "live frame (emit → frame) p99, quiet / under flood",
        f"{ms(quiet)} / {ms(flood)}",
        f"< {TARGET_RATIO:.0f}x quiet",
        flood < TARGET_RATIO * quiet,
        value=flood,
        better="lower",
    )
    rss = phase.rss_mb
    before, peak, after = max(rss[QUIET]), max(rss[FLOOD] + rss[AFTER]), rss[AFTER][-1]
    out.add(
        "API RSS before / peak / after",
        f"{before:.0f} / {peak:.0f} / {after:.0f} MB",
        f"peak < {RSS_BOUND:g}x before",
        peak < RSS_BOUND * before,
        value=peak,
        better="lower",
    )
    refused = ", ".join(f"{k}: {v}" for k, v in phase.refused.items()) or "none"
    out.note(
        f"well-behaved client ({GOOD_ADDRESS}): {len(phase.history_ms[QUIET])} / "
        f"{len(phase.history_ms[FLOOD])} history pages and {len(phase.live_ms[QUIET])} / "
        f"{len(phase.live_ms[FLOOD])} live frames quiet / under flood ({seconds:.0f} s each); "
        f"answers other than 200: {refused}"
    )
    out.note(
        "CPU, % of one core: "
        + "; ".join(
            f"{name}: " + ", ".join(f"{g} {v:.0f}%" for g, v in groups.items())
            for name, groups in phase.cpu.items()
        )
        + f" (load average at the end {' '.join(f'{x:.1f}' for x in os.getloadavg())})"
    )
    busy = phase.busy_connections
    out.note(
        f"the API's database connections busy (pool of at most {ApiConfig().pool_max_size}), "
        "sampled every 0.1 s, mean / max: "
        + "; ".join(
            f"{name} {sum(busy[name]) / len(busy[name]):.1f} / {max(busy[name]):.0f}"
            for name in (QUIET, FLOOD)
            if busy.get(name)
        )
    )
    counts, rest_ms = flood_result["counts"], flood_result["rest_ms"]
    per_kind = {
        kind: sum(v for k, v in counts.items() if k.startswith(f"{kind} ")) for kind in rest_ms
    }
    rest = sum(per_kind.values())
    out.note(
        f"the flood (127.0.0.1, {seconds:.0f} s): {rest:,} REST requests "
        f"({rest / seconds:,.0f}/s); " + "; ".join(f"{k} {v:,}" for k, v in counts.items())
    )
    out.note(
        "the flood's REST requests, mean time per kind: "
        + ", ".join(f"{k} {ms(rest_ms[k] / max(1, n))}" for k, n in per_kind.items())
    )
