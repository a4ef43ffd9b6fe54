"""The page's tools in headless Chromium against the real product: indicators computed from the
served candles and kept in the address, and incomplete candles counted. They produce klines
of their own, so they run after tests/browser/test_page.py's screenshots."""

from __future__ import annotations

import re
import time
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import pytest
from playwright.sync_api import expect

from cryptochart.core.kline import Kline
from tests.browser.conftest import BrowserPage
from tests.browser.test_page import query
from tests.browser.views import second, state, store, wait_ready
from tests.pipeline import wait_for

pytestmark = pytest.mark.browser


def walk(symbol: str, start_ms: int, seconds: int, skip: range = range(0)) -> list[Kline]:
    """Closed 1s klines of ``symbol`` from ``start_ms`` whose closes walk up and down by uneven
    steps (so averages have many digits); the seconds in ``skip`` are left out."""
    return [
        second(symbol, start_ms + i * 1000, str(Decimal("1000.00000000") + Decimal(i * 37 % 23)))
        for i in range(seconds)
        if i not in skip
    ]


def legend_value(view: BrowserPage, study: str) -> str:
    item = view.page.locator(f'#legend-studies .study[data-study="{study}"] .num')
    expect(item).not_to_be_empty()
    return item.inner_text()


def test_indicators_from_the_address_are_drawn_with_the_served_closes(
    chart_page: BrowserPage,
) -> None:
    symbol = "INDIUSDT"
    now = int(time.time()) * 1000
    klines = store(chart_page.stack, walk(symbol, now - 90_000, 90))
    chart_page.open(f"?symbol={symbol}&interval=1s&ind=sma20,ema50,rsi14,macd")
    wait_ready(chart_page, symbol, "1s", bars=len(klines))
    assert state(chart_page)["indicators"] == ["sma20", "ema50", "rsi14", "macd"]

    # SMA(20) of the newest bar: the mean of the last 20 closes, to the digits shown.
    shown = legend_value(chart_page, "sma20")
    digits = Decimal(1).scaleb(-len(shown.partition(".")[2]))
    mean = sum((k.close for k in klines[-20:]), Decimal(0)) / 20
    assert Decimal(shown) == mean.quantize(digits, ROUND_HALF_EVEN), (shown, mean)
    for study in ("ema50", "rsi14", "macd"):
        assert legend_value(chart_page, study)
    chart_page.console.assert_clean()


def test_the_indicator_menu_changes_the_address_and_bad_ones_are_named(
    chart_page: BrowserPage,
) -> None:
    chart_page.open("?symbol=BTCUSDT&interval=1m&ind=sma1,bogus,vwap")
    wait_ready(chart_page, "BTCUSDT", "1m")
    page = chart_page.page
    assert state(chart_page)["indicators"] == ["vwap"]
    assert query(chart_page)["ind"] == ["vwap"]
    expect(page.locator("#toast")).to_contain_text("SMA period must be 2\u2013500, not 1")
    expect(page.locator("#toast")).to_contain_text("“bogus” is not an indicator")

    page.locator("#indicator-toggle").click()
    expect(page.locator("#indicator-menu")).to_be_visible()
    page.get_by_test_id("indicator-sma20").check()
    page.wait_for_function("() => window.__cryptochart.indicators.includes('sma20')")
    assert set(query(chart_page)["ind"][0].split(",")) == {"vwap", "sma20"}
    expect(page.locator('#legend-studies .study[data-study="sma20"]')).to_be_visible()
    chart_page.console.assert_clean()


def test_a_minute_with_missing_seconds_is_counted_as_incomplete(chart_page: BrowserPage) -> None:
    symbol = "HOLEUSDT"
    minute = (int(time.time()) // 60 - 4) * 60_000  # three closed minutes, the middle one holed
    store(chart_page.stack, walk(symbol, minute, 180, skip=range(70, 89)))

    def aggregated() -> bool:
        response = chart_page.stack.get(
            "/api/v1/klines", symbol=symbol, interval="1m", withSeconds="true"
        )
        rows: list[list[Any]] = response.json() if response.status_code == 200 else []
        return [row[-1] for row in rows] == [60, 41, 60]

    wait_for(aggregated, 30, f"{symbol}'s three minutes with their seconds counted")
    chart_page.open(f"?symbol={symbol}&interval=1m")
    wait_ready(chart_page, symbol, "1m", bars=3)
    # The newest candle came over the socket too (its current candle, sent on subscribing):
    # a frame carries no count of seconds, but this one repeats the candle REST counted, so
    # its count still holds and all three minutes are counted.
    counted = {"stored": 161, "expected": 180, "uncounted": 0}
    try:
        chart_page.page.wait_for_function(
            "(want) => JSON.stringify(window.__cryptochart.visibleSeconds)"
            " === JSON.stringify(want)",
            arg=counted,
        )
    except Exception as exc:
        raise AssertionError(f"visible seconds: {state(chart_page)['visibleSeconds']}") from exc
    status = chart_page.page.locator("#status-seconds")
    # The status bar shows the same figure: 161 of 180 seconds, never rounded up.
    expect(status).to_have_text("seconds 89.44%")
    expect(status).to_have_attribute("data-complete", "false")
    chart_page.console.assert_clean()


def written_at(step: str) -> re.Pattern[str]:
    """A number written with exactly the decimals of ``step``: 0.01 → 61130.99, 10 → 61130."""
    places = len(step.partition(".")[2].rstrip("0"))
    return re.compile(rf"^-?\d+\.\d{{{places}}}$" if places else r"^-?\d+$")


def test_prices_are_written_at_the_symbols_tick_size(chart_page: BrowserPage) -> None:
    symbol = "BTCUSDT"  # the simulated feed declares its tick and lot size

    def sizes() -> dict[str, Any] | None:
        listed = chart_page.stack.get("/api/v1/symbols").json()
        info = next((s for s in listed if s["symbol"] == symbol), None)
        return info if info and info["tickSize"] and info["lotSize"] else None

    wait_for(lambda: sizes() is not None, 30, f"{symbol}'s tick and lot size listed")
    info = sizes()
    assert info is not None
    tick, lot = info["tickSize"], info["lotSize"]
    chart_page.open(f"?symbol={symbol}&interval=1m")
    wait_ready(chart_page, symbol, "1m")
    want = {"precision": len(tick.partition(".")[2]), "minMove": float(tick)}
    try:
        chart_page.page.wait_for_function(
            "(want) => JSON.stringify(window.__cryptochart.priceFormat) === JSON.stringify(want)",
            arg=want,
        )
    except Exception as exc:
        raise AssertionError(f"price format: {state(chart_page)['priceFormat']}") from exc

    page = chart_page.page
    price, quantity = written_at(tick), written_at(lot)
    for field in "ohlc":
        expect(page.locator(f'#legend [data-f="{field}"]')).to_have_text(price)
    expect(page.locator('#legend [data-f="v"]')).to_have_text(quantity)
    expect(page.locator("#view-price")).to_have_text(price)
    expect(page.get_by_test_id(f"symbol-row-{symbol}").get_by_test_id("symbol-price")).to_have_text(
        price
    )
    chart_page.console.assert_clean()
