"""The page while the API goes away and comes back: it says the connection is lost, reconnects
on its own, and fills the seconds it missed, so its 1s bars run on without a hole.

It stops the stack's API, so it runs after every other browser test (the file sorts last)."""

from __future__ import annotations

import psycopg
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import BrowserPage
from tests.browser.views import state, wait_ready
from tests.pipeline import wait_for

pytestmark = pytest.mark.browser


def newest_stored(view: BrowserPage, symbol: str) -> int:
    """The newest 1s kline of ``symbol`` in the database, in Unix seconds."""
    with psycopg.connect(view.stack.settings.database_url) as conn:
        row = conn.execute(
            "SELECT extract(epoch FROM max(open_time))::bigint FROM kline_1s WHERE symbol = %s",
            (symbol,),
        ).fetchone()
    assert row is not None and row[0] is not None
    return int(row[0])


def test_the_page_reconnects_after_the_api_restarts_and_fills_the_gap(
    chart_page: BrowserPage,
) -> None:
    symbol, page, stack = "BTCUSDT", chart_page.page, chart_page.stack
    chart_page.open(f"?symbol={symbol}&interval=1s")
    wait_ready(chart_page, symbol, "1s", bars=60)
    before = state(chart_page)["lastBar"]["time"]

    stack.stop_api()
    expect(page.get_by_test_id("connection")).not_to_have_attribute("data-state", "open")
    assert state(chart_page)["connection"] != "open"
    # The feed goes on while the API is away: at least five seconds the page has not seen.
    wait_for(lambda: newest_stored(chart_page, symbol) >= before + 5, 30, "5 s stored meanwhile")
    missed = newest_stored(chart_page, symbol)

    stack.start_api()
    page.wait_for_function(
        "(t) => window.__cryptochart.connection === 'open'"
        " && window.__cryptochart.lastBar.time >= t",
        arg=missed,
        timeout=45_000,
    )
    # No hole: the simulated feed stores every second, and so must the page's bars hold every
    # second from its first to its last (the ones from while it was away fetched over REST).
    page.wait_for_function(
        "() => { const s = window.__cryptochart;"
        " return s.barCount === s.lastBar.time - s.firstBarTime + 1; }",
        timeout=15_000,
    )
    shown = state(chart_page)
    assert shown["chartState"] == "ready", shown
    chart_page.console.assert_clean(lambda error: "ERR_CONNECTION_REFUSED" in error)
