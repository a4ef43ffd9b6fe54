"""What browser tests read of the page (its state, when it is ready) and the klines they
produce of their own."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from cryptochart.core.kline import Kline
from tests.browser.conftest import BrowserPage, Stack
from tests.pipeline import produce, wait_for

READY = """(want) => {
  const s = window.__cryptochart;
  return s.symbol === want.symbol && s.interval === want.interval && s.chartState === "ready"
    && s.barCount >= want.bars && s.connection === "open" && s.symbols.includes(want.symbol);
}"""


def state(view: BrowserPage) -> dict[str, Any]:
    snapshot: dict[str, Any] = view.page.evaluate("() => window.__cryptochart")
    return snapshot


def wait_ready(view: BrowserPage, symbol: str, interval: str, bars: int = 1) -> dict[str, Any]:
    """Wait until the page shows ``symbol`` at ``interval`` with ``bars`` loaded, live, and
    the sidebar lists it."""
    want = {"symbol": symbol, "interval": interval, "bars": bars}
    try:
        view.page.wait_for_function(READY, arg=want, timeout=15_000)
    except Exception as exc:
        raise AssertionError(f"page not ready for {want}: {state(view)}") from exc
    return state(view)


def second(symbol: str, open_time: int, close: str, open_: str | None = None) -> Kline:
    """A closed 1s kline of ``symbol``, emitted now."""
    price, start = Decimal(close), Decimal(open_ or close)
    return Kline(
        symbol=symbol,
        open_time=open_time,
        close_time=open_time + 999,
        open=start,
        high=max(price, start) + Decimal("2.5"),
        low=min(price, start) - Decimal("2.5"),
        close=price,
        volume=Decimal("0.25000000"),
        quote_volume=Decimal("0.25") * price,
        trades=3,
        taker_buy_base_volume=Decimal("0.10000000"),
        taker_buy_quote_volume=Decimal("0.1") * price,
        event_time=time.time_ns() // 1_000_000,
    )


def seed(stack: Stack, symbol: str, price: str, seconds: int = 60) -> list[Kline]:
    """``seconds`` closed klines of ``symbol`` up to the last whole second, stored and served."""
    now = time.time() // 1 * 1000
    klines = [second(symbol, int(now) - (seconds - i) * 1000, price) for i in range(seconds)]
    return store(stack, klines)


def store(stack: Stack, klines: list[Kline]) -> list[Kline]:
    """``klines`` of one symbol produced, then waited for until the API serves them all.
    Produced with the feed's source header, so the page's SIM banner stays as it is."""
    produce(stack.settings, klines, source="sim")
    symbol = klines[0].symbol

    def served() -> bool:
        response = stack.get("/api/v1/klines", symbol=symbol, interval="1s", limit=1000)
        return response.status_code == 200 and len(response.json()) == len(klines)

    wait_for(served, 30, f"{len(klines)} seconds of {symbol} from the API")
    return klines
