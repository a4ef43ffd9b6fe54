"""B9 and B10: the page itself in headless Chromium on loopback, served by `cryptochart serve`.

B9, a cold load: each load in a fresh browser context (no cache, no storage), navigation → the
page's own mark ``cryptochart:first-candle`` (set when its first candles reach the chart), read
from the browser's performance timeline, so the figure is the browser's clock alone.

B10, a 1s view left open for a simulated day: 86,400 closed 1s klines of one symbol go through the
real live path (KlineProducer → Kafka → the API's intake → WebSocket → the page), a few hundred at
a time, each batch waited for on the page (a socket's outbox keeps 256 frames per channel and
drops the oldest of a larger burst, and a dropped frame is a bar the page never sees). The JS heap
is read over CDP (``Runtime.getHeapUsage``) every few thousand bars as it stands, garbage
included, and every 20,000 bars and at the end after a forced collection (what the page holds).
The page caps the bars it keeps (``BAR_CAP`` in frontend/src/live.ts).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import psycopg
from playwright.sync_api import (
    Browser,
    CDPSession,
    Page,
    ViewportSize,
    WebSocket,
    sync_playwright,
)

from bench import klines as sim
from bench.chromium import CHROMIUM, CHROMIUM_ARGS
from bench.history_api import fill_day
from bench.live_api import wait_ready
from bench.processes import spawn
from bench.results import Outcome, RunOptions, ms, percentile
from bench.scratch import scratch_settings
from cryptochart.core.kline import Kline
from cryptochart.core.settings import ROOT, Settings
from cryptochart.devservices.ports import free_port
from cryptochart.ingest.inserter import staging_rows, write_batch
from cryptochart.ingest.producer import KlineProducer

TARGET_LOAD_P50_MS = 300.0
TARGET_HEAP_MB = 150.0
VIEWPORT: ViewportSize = {"width": 1400, "height": 850}
FIRST_CANDLE = "cryptochart:first-candle"
HISTORY_MINUTES = 1_000  # one full page of 1m candles, what the page asks for first
DAY_S = 86_400
BATCH = 200  # klines per step of B10: within the API's backlog of 256 frames per channel
SAMPLE_EVERY = 4_000  # bars between two readings of the heap in use
COLLECT_EVERY = 20_000  # bars between two forced collections (the live heap)
BOUNDED = 1.25  # the live heap at the day's end, at most this times its size once at the cap
PAGE_CAP = 12_000  # the most bars the page keeps: BAR_CAP + DROP_BATCH in frontend/src/live.ts
STEP_TIMEOUT_S = 60.0


def _last_bar_time(page: Page) -> int | None:
    value: int | None = page.evaluate("() => window.__cryptochart.lastBar?.time ?? null")
    return value


def _wait(page: Page, check: str, timeout: float, what: str) -> None:
    try:
        page.wait_for_function(check, timeout=timeout * 1000, polling=20)
    except Exception as exc:
        raise RuntimeError(f"the page never showed {what}: {exc}") from None


def _minutes(options: RunOptions) -> int:
    return 10 if options.quick else HISTORY_MINUTES


@contextmanager
def page_api(base: Settings, options: RunOptions, label: str) -> Iterator[Settings]:
    """A scratch database with HISTORY_MINUTES of the first symbol, and the API serving the
    built page on it."""
    if not (ROOT / "frontend" / "dist" / "index.html").is_file():
        raise RuntimeError("build the page first: cd frontend && npm run build")
    names = sim.symbols(2)
    with scratch_settings(base, options.flavour, label, symbols=names) as settings:
        settings = replace(settings, api_port=free_port())
        fill_day(settings, names[:1], _minutes(options) * 60)
        api = spawn(settings, f"{label}-api", ["serve", "--log-level", "warning"], options.logs)
        try:
            wait_ready(settings, api)
            yield settings
        finally:
            api.stop()


@contextmanager
def chromium() -> Iterator[Browser]:
    """Headless Chromium (Playwright's sync API: no asyncio.run inside)."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Load:
    """One cold load's marks, ms since navigation start (the browser's own clock)."""

    first_candle: float
    dom_loaded: float  # DOMContentLoaded handled
    history_sent: float  # the first history request's start
    history_received: float  # … and its response's end


def _cold_load(browser: Browser, url: str) -> Load:
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.goto(url)
        _wait(
            page,
            f"() => performance.getEntriesByName('{FIRST_CANDLE}').length > 0",
            30,
            "its first candle",
        )
        marks: list[float] = page.evaluate(
            f"""() => {{
              const history = performance.getEntriesByType('resource')
                .find((e) => e.name.includes('/api/v1/klines'));
              return [
                performance.getEntriesByName('{FIRST_CANDLE}')[0].startTime,
                performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd,
                history ? history.startTime : -1,
                history ? history.responseEnd : -1,
              ];
            }}"""
        )
        return Load(*marks)
    finally:
        context.close()


def run_load(base: Settings, options: RunOptions) -> Outcome:
    loads = 5 if options.quick else 20
    out = Outcome("B9", "the page's cold load, navigation → first candle drawn")
    with page_api(base, options, "b9") as settings, chromium() as browser:
        symbol = settings.symbols[0]
        url = f"http://127.0.0.1:{settings.api_port}/?symbol={symbol}&interval=1m"
        _cold_load(browser, url)  # the API's first answers (pool, caches) are not the page's
        measured = [_cold_load(browser, url) for _ in range(loads)]
    first = [m.first_candle for m in measured]
    p50, p95 = percentile(first, 50), percentile(first, 95)
    out.add(
        f"p50 of {loads} cold loads ({_minutes(options):,} x 1m candles)",
        ms(p50),
        f"< {TARGET_LOAD_P50_MS:.0f} ms",
        p50 < TARGET_LOAD_P50_MS,
        value=p50,
        better="lower",
    )
    out.add(f"p95 of {loads} cold loads", ms(p95), value=p95, better="lower")
    for what, values in (
        ("navigation → DOMContentLoaded", [m.dom_loaded for m in measured]),
        ("navigation → history request sent", [m.history_sent for m in measured]),
        (
            "history request → its response",
            [m.history_received - m.history_sent for m in measured],
        ),
        (
            "history response → first candle set",
            [m.first_candle - m.history_received for m in measured],
        ),
    ):
        out.add(
            f"of which {what}, p50 / p95",
            f"{ms(percentile(values, 50))} / {ms(percentile(values, 95))}",
        )
    out.note(
        f"headless Chromium {CHROMIUM} (no GPU), a fresh context per load, "
        f"{VIEWPORT['width']}x{VIEWPORT['height']}; one warm-up load first; the mark is set where "
        "the first candles are set on the series (frontend/src/chart.ts)"
    )
    return out


def _heap_mb(cdp: CDPSession) -> float:
    usage: dict[str, Any] = cdp.send("Runtime.getHeapUsage")
    return float(usage["usedSize"]) / 2**20


def _seed(settings: Settings, symbol: str, open_ms: int) -> None:
    """One stored kline of ``symbol``, so the page opens it as a known symbol and subscribes."""
    kline = sim.history([symbol], 1, start_ms=open_ms)[0]
    with psycopg.connect(settings.database_url) as conn:
        write_batch(conn, staging_rows(enumerate([kline])))


def _live_heap_mb(cdp: CDPSession) -> float:
    """The heap after a forced full collection: what the page still holds."""
    cdp.send("HeapProfiler.collectGarbage")
    return _heap_mb(cdp)


@dataclass
class DayOnPage:
    in_use_mb: list[float]  # every SAMPLE_EVERY bars (the first before any): garbage included
    live_mb: dict[int, float]  # bars pushed -> the heap after a forced collection
    bars_kept: int
    frames: int  # kline frames the page received
    seconds: float  # wall-clock time to push the day


def _push_day(
    page: Page, producer: KlineProducer, day: list[Kline], cdp: CDPSession, result: DayOnPage
) -> None:
    """Every kline of ``day`` to Kafka, BATCH at a time, each batch waited for on the page; the
    heap in use every SAMPLE_EVERY bars, the live heap every COLLECT_EVERY bars and at the end
    (collected rarely, so the heap in use shows the page's own collections)."""
    result.in_use_mb.append(_heap_mb(cdp))
    result.live_mb[0] = _live_heap_mb(cdp)
    for i in range(0, len(day), BATCH):
        chunk = day[i : i + BATCH]
        for kline in chunk:
            producer.publish(kline)
        if producer.flush(30):
            raise RuntimeError("klines not delivered to Kafka")
        pushed = i + len(chunk)
        _wait(
            page,
            f"() => window.__cryptochart.lastBar?.time >= {chunk[-1].open_time // 1000}",
            STEP_TIMEOUT_S,
            f"bar {pushed:,}",
        )
        if pushed % SAMPLE_EVERY < BATCH:
            result.in_use_mb.append(_heap_mb(cdp))
        if pushed % COLLECT_EVERY < BATCH or pushed == len(day):
            result.live_mb[pushed] = _live_heap_mb(cdp)


def _day_on_page(settings: Settings, browser: Browser, symbol: str, day: list[Kline]) -> DayOnPage:
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        result = DayOnPage([], {}, 0, 0, 0.0)

        def count(socket: WebSocket) -> None:
            def on_frame(payload: str | bytes) -> None:
                if isinstance(payload, str) and '"type":"kline"' in payload:
                    result.frames += 1

            socket.on("framereceived", on_frame)

        page.on("websocket", count)
        cdp = context.new_cdp_session(page)
        page.goto(f"http://127.0.0.1:{settings.api_port}/?symbol={symbol}&interval=1s")
        _wait(
            page,
            "() => window.__cryptochart.barCount >= 1 "
            "&& window.__cryptochart.connection === 'open'",
            30,
            "the seeded bar and an open socket",
        )
        # The subscription is acknowledged a moment after the socket opens.
        page.wait_for_timeout(1000)
        started = time.monotonic()
        _push_day(page, KlineProducer(settings, "sim"), day, cdp, result)
        result.seconds = time.monotonic() - started
        result.bars_kept = page.evaluate("() => window.__cryptochart.barCount")
        return result
    finally:
        context.close()


def run_day(base: Settings, options: RunOptions) -> Outcome:
    seconds = 24_000 if options.quick else DAY_S
    out = Outcome("B10", "a 1s view open for a simulated day: the page's JS heap")
    with page_api(base, options, "b10") as settings:
        symbol = settings.symbols[1]
        start_ms = (int(time.time()) - seconds) * 1000
        _seed(settings, symbol, start_ms - 1000)
        day = sim.history([symbol], seconds, start_ms=start_ms)
        with chromium() as browser:
            result = _day_on_page(settings, browser, symbol, day)
    in_use, live = result.in_use_mb, result.live_mb
    peak = max(in_use)
    out.add(
        f"JS heap in use, peak over {seconds:,} live 1s bars (garbage included)",
        f"{peak:.1f} MB",
        f"< {TARGET_HEAP_MB:.0f} MB",
        peak < TARGET_HEAP_MB,
        value=peak,
        better="lower",
    )
    cap = min(n for n in live if n >= PAGE_CAP or n == max(live))  # first reading at the cap
    grown = live[max(live)] / live[cap]
    out.add(
        "JS heap live (after a forced collection) at "
        + ", ".join(f"{n:,}" for n in live)
        + " bars",
        " / ".join(f"{v:.1f}" for v in live.values()) + " MB",
        f"end < {BOUNDED:g}x at {cap:,}",
        grown < BOUNDED,
        value=live[max(live)],
        better="lower",
    )
    out.add("bars kept by the page at the end", f"{result.bars_kept:,}")
    out.note(
        f"{result.frames:,} kline frames reached the page for {seconds:,} klines published, "
        f"{BATCH} at a time, in {result.seconds:.0f} s ({seconds / result.seconds:,.0f} bars/s); "
        f"heap in use every {SAMPLE_EVERY:,} bars: " + " ".join(f"{h:.0f}" for h in in_use) + " MB"
    )
    out.note(
        "fed through the real live path: KlineProducer → Kafka → the API's intake → WebSocket "
        "→ the page's socket; the JS heap is CDP Runtime.getHeapUsage's usedSize, the live heap "
        "the same after HeapProfiler.collectGarbage; the day is pushed some 400x faster than "
        "live, so garbage piles up faster than a page open for a real day would see"
    )
    return out
