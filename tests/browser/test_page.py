"""The page in headless Chromium against the real product on the simulated source: it loads and
draws without errors, leaves a screenshot in tests/artifacts/, switches interval and symbol,
explains an unknown symbol, and shows a kline produced to Kafka.

The tests that produce their own klines use symbols the simulated feed does not stream (so its
walk never overwrites them) and run last, so the screenshot's sidebar lists the feed's only."""

from __future__ import annotations

import re
from itertools import pairwise
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import (
    ARTIFACTS,
    HOUR_OF_MINUTES,
    PHONE,
    SIM_SYMBOLS,
    BrowserPage,
    Frame,
    Stack,
)
from tests.browser.views import second, seed, state, wait_ready
from tests.pipeline import produce

pytestmark = pytest.mark.browser

UP = (0x3F, 0xB6, 0x8B)  # theme.up and theme.down: the candle bodies' colours
DOWN = (0xE5, 0x53, 0x4B)
PRICE = re.compile(r"^\d+\.\d+$")

# Size of each canvas of the chart (lightweight-charts stacks a few per pane) and how many of its
# pixels have a candle colour: an unsized or blank chart has none.
CANVASES = """(colours) =>
[...document.querySelectorAll('[data-testid="chart"] canvas')].map((c) => {
  const ctx = c.getContext("2d");
  let candle = 0;
  if (ctx && c.width > 0 && c.height > 0) {
    const data = ctx.getImageData(0, 0, c.width, c.height).data;
    for (let i = 0; i < data.length; i += 4) {
      if (colours.some(([r, g, b]) => data[i] === r && data[i + 1] === g && data[i + 2] === b)) {
        candle++;
      }
    }
  }
  const box = c.getBoundingClientRect();
  return { width: box.width, height: box.height, candle };
})"""


def by_candles(canvas: dict[str, Any]) -> int:
    pixels: int = canvas["candle"]
    return pixels


def query(view: BrowserPage) -> dict[str, list[str]]:
    return parse_qs(urlparse(view.page.url).query)


def rest_klines(stack: Stack, symbol: str, interval: str) -> list[list[Any]]:
    response = stack.get("/api/v1/klines", symbol=symbol, interval=interval, limit=1000)
    response.raise_for_status()
    rows: list[list[Any]] = response.json()
    return rows


def test_page_loads_draws_the_chart_and_lists_the_symbols(chart_page: BrowserPage) -> None:
    chart_page.open("?symbol=BTCUSDT&interval=1m")
    shown = wait_ready(chart_page, "BTCUSDT", "1m", bars=HOUR_OF_MINUTES)
    page = chart_page.page

    canvases = page.evaluate(CANVASES, [UP, DOWN])
    assert canvases, "no canvas inside data-testid=chart"
    assert all(c["width"] > 0 and c["height"] > 0 for c in canvases), canvases
    # The candle pane's plot (the price axis's canvas has the last price's label in a candle
    # colour, so it does not count).
    plot = max((c for c in canvases if c["width"] > 400 and c["height"] > 300), key=by_candles)
    assert plot["candle"] > 2_000, f"no candles drawn: {canvases}"
    assert_is_the_api_view(chart_page.stack, shown, "BTCUSDT", 60)

    assert sorted(shown["symbols"]) == sorted(SIM_SYMBOLS)
    for symbol in SIM_SYMBOLS:
        row = page.get_by_test_id(f"symbol-row-{symbol}")
        expect(row).to_be_visible()
        expect(row.get_by_test_id("symbol-price")).to_have_text(PRICE)
    expect(page.get_by_test_id("symbol-row-BTCUSDT")).to_have_attribute("aria-selected", "true")

    banner = page.get_by_test_id("source-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("SIM")
    expect(banner).to_contain_text("Simulated data")
    expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "open")
    expect(page.get_by_test_id("current-symbol")).to_have_text("BTCUSDT")
    expect(page.get_by_test_id("current-interval")).to_have_text("1m")
    expect(page.get_by_test_id("status-source")).to_have_text("simulated")
    assert state(chart_page)["source"] == "sim"

    # Live: the header's price is the last candle's close, and the latency is measured.
    page.wait_for_function(
        """() => {
          const s = window.__cryptochart;
          const price = document.querySelector('[data-testid="current-price"]').textContent;
          const last = Number(s.lastPrice.BTCUSDT);
          return s.lastBar.close === last && Number(price) === last;
        }"""
    )
    expect(page.get_by_test_id("latency")).to_have_text(re.compile(r"p50\s+\d+\s+ms"))
    chart_page.console.assert_clean()


def test_screenshot_of_the_desktop_page(chart_page: BrowserPage) -> None:
    """tests/artifacts/chart-BTCUSDT-1m.png; the README's frontend/screenshot.png is a copy."""
    page = chart_page.page
    chart_page.open("?symbol=BTCUSDT&interval=1m&ind=sma20,bb20,rsi14")
    wait_ready(chart_page, "BTCUSDT", "1m", bars=HOUR_OF_MINUTES)
    expect(page.get_by_test_id("current-change")).not_to_be_empty()
    expect(page.get_by_test_id("current-stats")).to_be_visible()
    expect(page.get_by_test_id("latency")).to_have_text(re.compile(r"p50\s+\d+\s+ms"))
    for symbol in SIM_SYMBOLS:
        change = page.get_by_test_id(f"symbol-row-{symbol}").get_by_test_id("symbol-change")
        expect(change).to_have_text(re.compile(r"^[+-]?\d+\.\d+%$"))
    for study in ("sma20", "bb20", "rsi14"):
        expect(page.locator(f'#legend-studies .study[data-study="{study}"] .num')).not_to_be_empty()
    page.evaluate("() => document.fonts.ready.then(() => true)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / "chart-BTCUSDT-1m.png"
    page.screenshot(path=path)
    assert path.stat().st_size > 20_000
    chart_page.console.assert_clean()


def test_the_page_on_a_phone(phone_page: BrowserPage) -> None:
    """The chart takes the width, the symbols open as a drawer, nothing runs off the screen;
    tests/artifacts/chart-phone.png is the README's frontend/screenshot-phone.png."""
    phone_page.open("?symbol=BTCUSDT&interval=1m")
    wait_ready(phone_page, "BTCUSDT", "1m")
    page = phone_page.page
    width = PHONE["width"]
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width
    chart = page.get_by_test_id("chart").bounding_box()
    assert chart is not None and chart["width"] >= width - 16, chart
    sidebar = page.locator("#sidebar")
    expect(sidebar).not_to_be_in_viewport()

    page.locator("#sidebar-toggle").tap()
    expect(sidebar).to_be_in_viewport()
    expect(page.locator("#sidebar-toggle")).to_have_attribute("aria-expanded", "true")
    page.get_by_test_id("symbol-row-ETHUSDT").tap()
    wait_ready(phone_page, "ETHUSDT", "1m")
    expect(sidebar).not_to_be_in_viewport()
    expect(page.locator("#sidebar-toggle")).to_have_attribute("aria-expanded", "false")

    page.evaluate("() => document.fonts.ready.then(() => true)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / "chart-phone.png"
    page.screenshot(path=path)
    assert path.stat().st_size > 20_000
    phone_page.console.assert_clean()


def test_switching_interval_and_symbol_changes_the_data_and_the_address(
    chart_page: BrowserPage,
) -> None:
    stack = chart_page.stack
    page = chart_page.page
    chart_page.open("?symbol=BTCUSDT&interval=1m")
    minutes = wait_ready(chart_page, "BTCUSDT", "1m", bars=HOUR_OF_MINUTES)

    page.get_by_test_id("interval-5m").click()
    fives = wait_ready(chart_page, "BTCUSDT", "5m")
    assert query(chart_page) == {"symbol": ["BTCUSDT"], "interval": ["5m"]}
    expect(page.get_by_test_id("interval-5m")).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_test_id("interval-1m")).to_have_attribute("aria-pressed", "false")
    expect(page.get_by_test_id("current-interval")).to_have_text("5m")
    assert fives["barCount"] < minutes["barCount"] / 4
    assert_is_the_api_view(stack, fives, "BTCUSDT", 300)

    page.get_by_test_id("symbol-row-ETHUSDT").click()
    eth = wait_ready(chart_page, "ETHUSDT", "5m")
    assert query(chart_page) == {"symbol": ["ETHUSDT"], "interval": ["5m"]}
    expect(page.get_by_test_id("current-symbol")).to_have_text("ETHUSDT")
    expect(page.get_by_test_id("symbol-row-ETHUSDT")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_test_id("symbol-row-BTCUSDT")).to_have_attribute("aria-selected", "false")
    assert_is_the_api_view(stack, eth, "ETHUSDT", 300)
    assert eth["lastBar"]["close"] != fives["lastBar"]["close"]
    chart_page.console.assert_clean()


def assert_is_the_api_view(stack: Stack, shown: dict[str, Any], symbol: str, step: int) -> None:
    """The page's bars are the API's for its view: ``step`` seconds apart, the same count and
    newest bar (give or take a bucket opening between the page's read and this one)."""
    rows = rest_klines(stack, symbol, f"{step // 60}m")
    times = [row[0] // 1000 for row in rows]
    assert {b - a for a, b in pairwise(times)} == {step}, times
    last = shown["lastBar"]
    assert last["time"] % step == 0
    assert last["time"] in times[-2:], (last, times[-3:])
    assert shown["barCount"] in (len(rows) - 1, len(rows)), (shown["barCount"], len(rows))
    close = float(rows[times.index(last["time"])][4])
    assert abs(last["close"] - close) / close < 0.05, (last, rows[-1])


def test_an_unknown_symbol_shows_its_state(chart_page: BrowserPage) -> None:
    chart_page.open("?symbol=NOPEUSDT")
    card = chart_page.page.get_by_test_id("chart-state")
    expect(card).to_have_attribute("data-state", "unknown-symbol")
    expect(card).to_be_visible()
    expect(card).to_contain_text("NOPEUSDT")
    shown = state(chart_page)
    assert (shown["chartState"], shown["barCount"], shown["lastBar"]) == ("unknown-symbol", 0, None)
    # Chromium itself logs the API's 400 for the klines request; nothing else may show.
    chart_page.console.assert_clean(lambda error: "status of 400" in error)
    assert len(chart_page.console.errors) == 1, chart_page.console.errors


# --- klines of our own ----------------------------------------------------------------------


def kline_subscribed(symbol: str, interval: str) -> Any:
    def match(frame: Frame) -> bool:
        return (
            frame.get("type") == "subscribed"
            and frame.get("channel") == "kline"
            and symbol in frame.get("symbols", [])
            and frame.get("interval") == interval
        )

    return match


def test_a_kline_produced_to_kafka_moves_the_price_and_the_last_candle(
    chart_page: BrowserPage,
) -> None:
    symbol, close = "PROBEUSDT", "12345.67891234"
    seeded = seed(chart_page.stack, symbol, "12340.00000000")
    chart_page.open(f"?symbol={symbol}&interval=1s")
    last = wait_ready(chart_page, symbol, "1s", bars=len(seeded))["lastBar"]
    assert last["time"] * 1000 == seeded[-1].open_time
    chart_page.wait_for_frame(kline_subscribed(symbol, "1s"))

    next_second = last["time"] + 1
    produce(chart_page.stack.settings, [second(symbol, next_second * 1000, close, "12340")], "sim")
    page = chart_page.page
    page.wait_for_function(
        """([symbol, close, time]) => {
          const s = window.__cryptochart;
          return s.lastPrice[symbol] === close && s.lastBar.time === time
            && s.lastBar.close === Number(close);
        }""",
        arg=[symbol, close, next_second],
        timeout=10_000,
    )
    assert state(chart_page)["barCount"] == len(seeded) + 1
    expect(page.get_by_test_id("current-price")).to_have_text(close)
    row = page.get_by_test_id(f"symbol-row-{symbol}")
    expect(row.get_by_test_id("symbol-price")).to_have_text(close)
    expect(page.get_by_test_id("legend")).to_contain_text(close)
    chart_page.console.assert_clean()


def test_a_new_page_shows_the_newest_price_of_a_quiet_symbol(chart_page: BrowserPage) -> None:
    symbol, close = "QUIETUSDT", "2233.44556677"
    seeded = seed(chart_page.stack, symbol, "2222.00000000")
    # A first page follows the symbol's ticker, then sees one more kline.
    chart_page.open("?symbol=BTCUSDT&interval=1m")
    wait_ready(chart_page, "BTCUSDT", "1m")
    chart_page.wait_for_frame(lambda f: f.get("type") == "ticker" and f.get("symbol") == symbol)
    newest = seeded[-1].open_time + 1000
    produce(chart_page.stack.settings, [second(symbol, newest, close, "2222")], "sim")
    chart_page.page.wait_for_function(
        "([symbol, close]) => window.__cryptochart.lastPrice[symbol] === close", arg=[symbol, close]
    )

    # A second page: the first ticker frame of the symbol must carry that kline's close.
    chart_page.open("?symbol=BTCUSDT&interval=1m")
    frame = chart_page.wait_for_frame(
        lambda f: f.get("type") == "ticker" and f.get("symbol") == symbol
    )
    assert frame["lastPrice"] == close, frame
    chart_page.page.wait_for_function(
        "([symbol, close]) => window.__cryptochart.lastPrice[symbol] === close", arg=[symbol, close]
    )
