"""Choosing the source: explicit kinds, and ``auto`` falling back to the simulated feed loudly."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

import pytest

from cryptochart.core.settings import Settings
from cryptochart.devservices.ports import free_port
from cryptochart.ingest.sources.binance.feed import BinanceSource
from cryptochart.ingest.sources.registry import open_source
from cryptochart.ingest.sources.replay import ReplaySource
from cryptochart.ingest.sources.simulated import SimulatedSource
from tests.fakes.binance import FakeBinance
from tests.pipeline import DATA

DUMP_1S = str(DATA / "BTCUSDT-1s-2024-03-01.part01.first180rows.csv")


def test_explicit_kinds() -> None:
    settings = Settings(symbols=("BTCUSDT", "ETHUSDT"), sim_seed=5)
    sim = open_source(replace(settings, source="sim"))
    assert isinstance(sim, SimulatedSource) and sim.name == "sim" and sim.seed == 5
    binance = open_source(replace(settings, source="binance"))
    assert isinstance(binance, BinanceSource) and binance.name == "binance"
    assert binance.symbols == ("BTCUSDT", "ETHUSDT")
    replay = open_source(replace(settings, source="replay", replay_path=DUMP_1S, replay_speed=2))
    assert isinstance(replay, ReplaySource) and replay.name == "replay" and replay.speed == 2
    with pytest.raises(ValueError, match="REPLAY_PATH"):
        open_source(replace(settings, source="replay"))


async def test_auto_uses_binance_when_it_answers() -> None:
    async with FakeBinance() as fake:
        settings = Settings(
            source="auto", binance_rest_url=fake.rest_url, binance_ws_url=fake.ws_url
        )
        source = await asyncio.to_thread(open_source, settings)
    assert source.name == "binance"
    assert fake.stats.rest_requests == {"/api/v3/ping": 1}


def test_auto_falls_back_to_simulated_data_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(source="auto", binance_rest_url=f"http://127.0.0.1:{free_port()}")
    with caplog.at_level(logging.WARNING, logger="cryptochart.ingest.sources.registry"):
        source = open_source(settings, probe_timeout=1.0)
    assert source.name == "sim"
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "SIMULATED" in warning.getMessage() and "NOT real" in warning.getMessage()
