"""Two API replicas (`cryptochart serve` on two ports) over one database and one klines topic,
each following the topic on its own. Pages follow symbols on one; kill -9 of it, and every page
reconnects to the other and fills its gap as the page does after a reconnect (REST from its newest
candle, then live): no page shows a hole, and every candle it shows is exactly the stored one."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from statistics import mean
from typing import NamedTuple

import httpx
import pytest

from cryptochart.core.settings import Settings
from cryptochart.devservices.ports import free_port
from tests.faults.conftest import Scenario
from tests.faults.expected import SECOND_MS, past_start, sim_klines
from tests.faults.failover_client import FailoverClient, Fleet
from tests.faults.stages import Stage, Stages, assert_alive
from tests.faults.stored import assert_landed_exactly, count_rows, stored
from tests.faults.waiting import poll_until

SYMBOLS = tuple(f"REPL{i}USDT" for i in range(3))
SEED = 13
INTERVALS = ("1s", "1m")


def ready(url: str) -> bool:
    """``/ready`` answers 200: the replica reaches the database and follows the topic."""
    try:
        return httpx.get(f"{url}/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def start_replica(stages: Stages, settings: Settings, name: str) -> tuple[Stage, str]:
    port = free_port()
    stage = stages.cli(name, settings, "serve", f"--port={port}", "--log-level=warning")
    return stage, f"http://127.0.0.1:{port}"


def await_ready(stage: Stage, url: str) -> None:
    poll_until(lambda: ready(url) or not stage.alive, 60, f"{stage.name} to be ready")
    assert stage.alive, stage.tail()


def shown_exactly(client: FailoverClient, url: str) -> str:
    """Empty when every candle the page shows equals the stored one and none is missing between
    its first and last; else what differs."""
    relation = f"kline_{client.interval}"
    rows = {t: row[:11] for (_, t), row in stored(url, relation, [client.symbol]).items()}
    bars = client.bars()
    if not bars:
        return f"{client.symbol} {client.interval}: no candle shown"
    holes = client.holes()
    if holes:
        return f"{client.symbol} {client.interval}: {len(holes)} candles missing, first {holes[0]}"
    for t, bar in sorted(bars.items()):
        if rows.get(t) != bar:
            return f"{client.symbol} {client.interval} at {t}: shown {bar}, stored {rows.get(t)}"
    return ""


def as_stored(client: FailoverClient, url: str) -> Callable[[], str | bool]:
    return lambda: shown_exactly(client, url) or True


def reached(client: FailoverClient, last_open: int) -> Callable[[], str | bool]:
    """A poll check: the page shows the feed's last candle and no hole before it."""

    def check() -> str | bool:
        bars = client.bars()
        if max(bars, default=0) < last_open:
            return f"{client.symbol} {client.interval} at {max(bars, default=None)}"
        holes = client.holes()
        return f"{client.symbol} {client.interval} misses {holes[:3]}" if holes else True

    return check


def all_live(clients: list[FailoverClient], replica: int, since: float) -> Callable[[], bool]:
    """A poll check: every page has had a live frame from ``replica`` after ``since``."""
    return lambda: all(c.live_on(replica, since) for c in clients)


def no_holes(clients: list[FailoverClient]) -> Callable[[], str | bool]:
    def check() -> str | bool:
        holed = [
            f"{c.symbol} {c.interval} {c.holes()[:3]} (hole fills {c.hole_filled}, waited "
            f"{c.holes_waited}, after reconnects {c.gap_filled}, errors {c.errors[-2:]})"
            for c in clients
            if c.holes()
        ]
        return f"holes: {holed}" if holed else True

    return check


class Recovery(NamedTuple):
    """Seconds from a kill until every page's socket to the other replica was open, and until
    every page had a live frame from it."""

    opened: float
    live: float


def run_failover(
    scenario: Scenario, stages: Stages, kills: int, pages_per_view: int, count: int, speed: float
) -> list[Recovery]:
    """The scenario; how long the pages took to recover from each kill."""
    settings = scenario(symbols=SYMBOLS)
    url = settings.database_url
    start = past_start(count)
    expected = sim_klines(SYMBOLS, SEED, start, count)
    inserter = stages.cli("inserter", settings, "insert")
    minute_job = stages.cli("minute-job", settings, "minute-job")
    replicas = [start_replica(stages, settings, name) for name in ("api-a", "api-b")]
    for stage, api in replicas:
        await_ready(stage, api)
    urls = [api for _, api in replicas]

    feed = stages.feed(settings, SYMBOLS, SEED, start, count, speed)
    # Some history first, as a page opened on a running product finds.
    poll_until(lambda: count_rows(url, "kline_1s", SYMBOLS) >= 5 * len(SYMBOLS), 30, "some history")
    views = [(s, i) for s in SYMBOLS for i in INTERVALS for _ in range(pages_per_view)]
    clients = [FailoverClient(symbol, interval, urls) for symbol, interval in views]
    rng = random.Random(kills)
    recoveries: list[Recovery] = []
    with Fleet(clients):
        serving = 0
        poll_until(all_live(clients, serving, 0.0), 30, "every page live on api-a")
        for _ in range(kills):
            time.sleep(rng.uniform(0.1, 1.0))  # a random moment of the stream
            stage, _ = replicas[serving]
            killed = time.monotonic()
            stage.kill9()
            other = 1 - serving
            poll_until(
                all_live(clients, other, killed),
                30,
                f"every page live on {replicas[other][0].name}",
            )
            firsts = [first for c in clients if (first := c.live_on(other, killed))]
            opened = max(first.opened for first in firsts) - killed
            recoveries.append(Recovery(opened, max(first.at for first in firsts) - killed))
            poll_until(no_holes(clients), 30, "every page to fill its gap")
            # The killed replica comes back, to be the next one the pages move to.
            stage.start()
            await_ready(stage, urls[serving])
            serving = other
        assert feed.wait(count / speed + 60) == 0, feed.tail()
        assert_landed_exactly(url, expected, levels=["1m"])
        last_second = start + (count - 1) * SECOND_MS
        for client in clients:
            last_open = last_second - last_second % client.step
            poll_until(reached(client, last_open), 30, "the page to show every candle")
            # The last live frames may still be on their way: the newest candle may grow.
            poll_until(as_stored(client, url), 15, "every candle shown as stored")
    assert_alive(inserter, minute_job, *(stage for stage, _ in replicas))
    for stage in (inserter, minute_job, *(stage for stage, _ in replicas)):
        assert stage.stop() == 0, stage.tail()
    report(clients, recoveries)
    return recoveries


def report(clients: list[FailoverClient], recoveries: list[Recovery]) -> None:
    live = [r.live for r in recoveries]
    by_gap = {i: sum(sum(c.gap_filled) for c in clients if c.interval == i) for i in INTERVALS}
    by_hole = {i: sum(sum(c.hole_filled) for c in clients if c.interval == i) for i in INTERVALS}
    print(
        f"\nAPI replica kill -9 ({len(recoveries)} kills, {len(clients)} pages): every page live "
        f"on the other replica within max {max(live):.2f}s, mean {mean(live):.2f}s (per kill, "
        f"the slowest page's socket open / first live frame: "
        f"{', '.join(f'{r.opened:.2f}/{r.live:.2f}' for r in recoveries)}); candles REST filled "
        f"after reconnecting {by_gap}, in holes behind the first live frame {by_hole}"
    )


def test_pages_fail_over_to_another_api_replica(scenario: Scenario, stages: Stages) -> None:
    run_failover(scenario, stages, kills=1, pages_per_view=2, count=120, speed=8)


@pytest.mark.slow
def test_pages_fail_over_between_api_replicas_again_and_again(
    scenario: Scenario, stages: Stages
) -> None:
    run_failover(scenario, stages, kills=6, pages_per_view=4, count=240, speed=4)
