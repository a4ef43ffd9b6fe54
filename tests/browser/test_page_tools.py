"""The page's tools in headless Chromium against the real product: indicators computed from the
served candles and kept in the address, and incomplete candles counted. They produce klines
of their own, so they run after tests/browser/test_page.py's screenshots."""

from __future__ import annotations

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
    # The newest candle came over the socket too (its current candle), which carries no count
    # of seconds, so it is left out of the figure, and said so: the two older ones are counted.
    counted = {"stored": 101, "expected": 120, "uncounted": 1}
    try:
        chart_page.page.wait_for_function(
            "(want) => JSON.stringify(window.__cryptochart.visibleSeconds)"
            " === JSON.stringify(want)",
            arg=counted,
        )
    except Exception as exc:
        raise AssertionError(f"visible seconds: {state(chart_page)['visibleSeconds']}") from exc
    status = chart_page.page.locator("#status-seconds")
    expect(status).to_have_attribute("data-complete", "false")
    chart_page.console.assert_clean()
