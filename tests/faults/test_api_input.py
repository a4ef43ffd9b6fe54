"""Fuzzed parameters and frames against `cryptochart serve`: never a 5xx or a crash, each bad
request a 400 that names its parameter, the request counters exact, and the WebSocket limits on
frame size and subscriptions enforced without harm to the connection's other work."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from cryptochart.api.history import MAX_TIME
from cryptochart.devservices.ports import free_port
from tests.faults.conftest import Scenario
from tests.faults.expected import SECOND_MS, past_start
from tests.faults.stages import Stage, Stages, backfill
from tests.faults.stored import assert_landed_exactly
from tests.faults.waiting import poll_until

DATA_SYMBOLS = ("APIF0USDT", "APIF1USDT")
CONFIGURED = DATA_SYMBOLS + tuple(f"APIC{i}USDT" for i in range(70))  # for subscription limits
INTERVALS = ("1s", "1m", "5m", "15m", "1h", "1d")
Params = list[tuple[str, str | int | float | bool | None]]
MAX_QUERY = 8_000  # characters: HTTP clients and servers refuse much longer request lines
PATHS = ("/api/v1/klines", "/api/v1/ticker", "/api/v1/symbols", "/api/v1/status")


@dataclass(frozen=True)
class Api:
    url: str
    stage: Stage

    def requests_total(self) -> Counter[tuple[str, str]]:
        """``cryptochart_api_requests_total`` by (path, status code)."""
        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        out: Counter[tuple[str, str]] = Counter()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "cryptochart_api_requests_total":
                    key = (sample.labels["path"], sample.labels["status_code"])
                    out[key] += int(sample.value)
        return out


@pytest.fixture
def api(scenario: Scenario, stages: Stages) -> Iterator[Api]:
    """The API over a database holding two minutes of two symbols, aggregated."""
    settings = scenario(symbols=CONFIGURED)
    data = replace(settings, symbols=DATA_SYMBOLS)
    stages.cli("aggregator", settings, "aggregate")
    stages.cli("inserter", settings, "insert")
    klines = backfill(stages, data, past_start(120), 120)
    assert_landed_exactly(settings.database_url, klines, timeout=30, levels=["1m", "5m"])
    port = free_port()
    # The fuzzer sends frames flat out; the per-socket message cap has tests of its own
    # (tests/test_api_limits.py), so here it is set out of the way.
    stage = stages.cli(
        "api",
        settings,
        "serve",
        f"--port={port}",
        "--log-level=warning",
        CRYPTOCHART_API_WS_MESSAGES_PER_SECOND="100000",
    )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return httpx.get(f"{url}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    poll_until(lambda: healthy() or not stage.alive, 30, "the API to answer")
    assert stage.alive, stage.tail()
    yield Api(url, stage)


# --- REST --------------------------------------------------------------------------------------


def fuzzed_text(rng: random.Random) -> str:
    return rng.choice(
        [
            "",
            " ",
            "BTC USDT",
            "'; DROP TABLE kline_1s; --",
            "A" * 33,
            "A" * 65,
            "A" * 5000,
            "ÄÖÜUSDT",
            "\x00",
            "%",
            "../../etc/passwd",
            "null",
            "[]",
            "1m",
            "apif0usdt",
            "NOPEUSDT",
            "".join(chr(rng.randrange(32, 0x2FFF)) for _ in range(rng.randrange(1, 40))),
        ]
    )


def fuzzed_number(rng: random.Random) -> str:
    return str(
        rng.choice(
            [
                0,
                -1,
                1,
                1000,
                1001,
                MAX_TIME,
                MAX_TIME + 1,
                10**20,
                -(10**20),
                "abc",
                "1.5",
                "",
                "1e3",
                "0x10",
                " 7",
                rng.randrange(-(10**15), 10**15),
                rng.randrange(1, 1001),
            ]
        )
    )


def fuzzed_request(rng: random.Random, now_ms: int) -> tuple[str, Params]:
    path = rng.choice(PATHS[:2]) if rng.random() < 0.9 else rng.choice(PATHS[2:])
    params: Params = []
    if path == "/api/v1/klines":
        if rng.random() < 0.9:
            params.append(
                ("symbol", rng.choice(DATA_SYMBOLS) if rng.random() < 0.5 else fuzzed_text(rng))
            )
        if rng.random() < 0.9:
            params.append(
                ("interval", rng.choice(INTERVALS) if rng.random() < 0.6 else fuzzed_text(rng))
            )
        for name in ("startTime", "endTime"):
            if rng.random() < 0.4:
                good = str(now_ms - rng.randrange(0, 600_000))
                params.append((name, good if rng.random() < 0.5 else fuzzed_number(rng)))
        if rng.random() < 0.5:
            params.append(("limit", fuzzed_number(rng)))
    elif path == "/api/v1/ticker" and rng.random() < 0.9:
        count = rng.choice([1, 2, 3, 101, 150])
        parts = [
            rng.choice(DATA_SYMBOLS) if rng.random() < 0.5 else fuzzed_text(rng)
            for _ in range(count)
        ]
        params.append(("symbols", ",".join(parts)[:MAX_QUERY]))
    if rng.random() < 0.1:
        params.append(("unknown", fuzzed_text(rng)))
    if rng.random() < 0.05 and params:
        params.append(params[0])  # a parameter given twice
    return path, params


def check_answer(path: str, params: Params, response: httpx.Response) -> None:
    where = f"{path} {params!r:.300} -> {response.status_code} {response.text[:300]!r}"
    assert response.status_code in (200, 400), where
    body: Any = response.json()
    if response.status_code == 400:
        assert isinstance(body, dict) and body.get("status_code") == 400, where
        assert isinstance(body.get("detail"), str) and body["detail"], where
        assert body.get("parameter") in {name for name, _ in params} | {"symbol", "interval"}, where
    elif path == "/api/v1/klines":
        assert isinstance(body, list) and all(len(row) == 12 for row in body), where


def run_rest_fuzz(api: Api, requests: int) -> None:
    rng = random.Random(requests)
    before = api.requests_total()
    sent: Counter[tuple[str, str]] = Counter()
    now_ms = past_start(0) + 60 * SECOND_MS
    with httpx.Client(base_url=api.url, timeout=30) as client:
        for _ in range(requests):
            path, params = fuzzed_request(rng, now_ms)
            response = client.get(path, params=params)
            check_answer(path, params, response)
            sent[(path, str(response.status_code))] += 1
        assert client.get("/health").status_code == 200
        assert client.get("/ready").status_code == 200
    assert api.stage.alive, api.stage.tail()
    after = api.requests_total()
    assert {k: after[k] - before[k] for k in sent} == dict(sent)
    assert sent[("/api/v1/klines", "400")] > 0 and sent[("/api/v1/klines", "200")] > 0, sent
    print(f"\napi fuzz: {requests} requests, {dict(sent)}")


def test_300_fuzzed_requests_and_200_fuzzed_frames(api: Api) -> None:
    run_rest_fuzz(api, 300)
    run_websocket_fuzz(api, 200)


@pytest.mark.slow
def test_1000_fuzzed_requests_and_5000_fuzzed_frames(api: Api) -> None:
    run_rest_fuzz(api, 1_000)  # the rate limit is 1200 a minute per client
    run_websocket_fuzz(api, 5_000)


# --- WebSocket ---------------------------------------------------------------------------------


def frames_until(ws: ClientConnection, kind: str, timeout: float = 10.0) -> dict[str, Any]:
    """The next frame of ``type`` ``kind``, skipping others (status, snapshots, klines)."""
    while True:
        frame: dict[str, Any] = json.loads(ws.recv(timeout=timeout))
        if frame.get("type") == kind:
            return frame


def fuzzed_frame(rng: random.Random) -> str:
    return rng.choice(
        [
            "not json",
            "",
            "[]",
            "null",
            "{}",
            '{"op": "dance"}',
            '{"op": "subscribe"}',
            '{"op": "subscribe", "channel": "kline", "symbols": [], "interval": "1m"}',
            '{"op": "subscribe", "channel": "kline", "symbols": ["APIF0USDT"], "interval": "2m"}',
            '{"op": "subscribe", "channel": "candles", "symbols": ["APIF0USDT"]}',
            '{"op": "subscribe", "channel": "ticker", "symbols": ["NOPE!"]}',
            '{"op": "subscribe", "channel": "ticker", "symbols": [5]}',
            '{"op": "unsubscribe", "channel": "kline", "symbols": ["X"], "interval": null}',
            json.dumps({"op": "subscribe", "channel": "ticker", "symbols": ["A" * 300]}),
            "\x00" * 10,
            "".join(chr(rng.randrange(32, 0x2FFF)) for _ in range(rng.randrange(1, 200))),
        ]
    )


def run_websocket_fuzz(api: Api, frames: int) -> None:
    """Fuzzed frames each answered by an error frame on a connection that goes on working; the
    subscription limit refuses the 65th channel; a frame over 4096 bytes closes with 1009."""
    ws_url = api.url.replace("http://", "ws://") + "/ws"
    rng = random.Random(frames)
    with connect(ws_url, open_timeout=10) as ws:
        frames_until(ws, "status")
        for _ in range(frames):
            ws.send(fuzzed_frame(rng))
            error = frames_until(ws, "error")
            assert error["error"] in {"bad_frame", "unknown_interval", "unknown_symbol"}, error
        ws.send('{"op": "ping"}')
        frames_until(ws, "pong")

        too_many = {"op": "subscribe", "channel": "ticker", "symbols": list(CONFIGURED[:65])}
        ws.send(json.dumps(too_many))
        assert frames_until(ws, "error")["error"] == "too_many_subscriptions"
        ws.send(json.dumps({**too_many, "symbols": list(CONFIGURED[:64])}))
        assert frames_until(ws, "subscribed")["symbols"] == list(CONFIGURED[:64])
        one_more = {
            "op": "subscribe",
            "channel": "kline",
            "symbols": [CONFIGURED[64]],
            "interval": "1m",
        }
        ws.send(json.dumps(one_more))
        assert frames_until(ws, "error")["error"] == "too_many_subscriptions"
        ws.send('{"op": "ping"}')
        frames_until(ws, "pong")

        ws.send("x" * 5000)
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                ws.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009

    with connect(ws_url, open_timeout=10) as ws:  # the server is fine afterwards
        frames_until(ws, "status")
        ws.send('{"op": "ping"}')
        frames_until(ws, "pong")
    assert api.stage.alive, api.stage.tail()
