"""Bad input: fuzzed exchange messages through `cryptochart produce --replay` (the source and
producer path) and bad messages on the klines topic. Nothing crashes, every broken message
lands in the dead-letter topic with its reason, every valid kline is stored, and the counters add
up."""

from __future__ import annotations

import json
import random
from collections import Counter
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest
from confluent_kafka import Producer

from cryptochart.core.kline import Kline, encode
from cryptochart.core.settings import Settings
from tests.fakes.binance import combined_stream_message
from tests.faults.conftest import Scenario
from tests.faults.expected import by_key, past_start, sim_klines
from tests.faults.fuzz import Corpus, stream_corpus
from tests.faults.stages import Stage, Stages, while_alive
from tests.faults.stored import assert_landed_exactly, matches
from tests.faults.topics import read_topic
from tests.faults.waiting import poll_until


def replay(stages: Stages, settings: Settings, tmp_path: Path, lines: list[bytes]) -> Stage:
    """`cryptochart produce --replay <recording> --speed 0`, run to its end."""
    recording = tmp_path / "fuzzed.jsonl"
    recording.write_bytes(b"\n".join(lines) + b"\n")
    stage = stages.cli("replay", settings, "produce", f"--replay={recording}", "--speed=0")
    assert stage.wait(120) == 0, stage.tail()
    return stage


def dead_letters(settings: Settings, count: int) -> list[tuple[bytes, dict[str, bytes]]]:
    """The dead-letter topic once it holds ``count`` messages; fails if it holds more."""
    topic = settings.dead_letter_topic
    poll_until(
        lambda: len(read_topic(settings.kafka_bootstrap, topic)) >= count, 30, "the dead letters"
    )
    letters = read_topic(settings.kafka_bootstrap, topic)
    assert len(letters) == count, [v[:60] for v, _ in letters]
    return letters


def run_stream_fuzz(
    scenario: Scenario, stages: Stages, tmp_path: Path, size: int, prefix: str
) -> None:
    names = (f"{prefix}0USDT", f"{prefix}1USDT")
    settings = scenario(symbols=names)
    seconds = size // 20
    klines = sim_klines(names, 11, past_start(seconds), seconds)
    corpus: Corpus = stream_corpus(random.Random(size), size, klines)
    stages.cli("aggregator", settings, "aggregate")
    inserter = stages.cli("inserter", settings, "insert")
    producer = replay(stages, settings, tmp_path, corpus.lines)

    counts = producer.counts()
    assert counts.get("closed", 0) == len(corpus.closed), counts
    assert counts.get("in_progress", 0) == corpus.in_progress, counts
    assert counts.get("rejected", 0) == len(corpus.rejected), counts
    assert counts.get("delivered", 0) == len(corpus.lines) - corpus.ignored, counts
    by_kind = {k: v for k, v in counts.items() if k.startswith("rejected_")}
    assert sum(by_kind.values()) == len(corpus.rejected), counts

    letters = read_topic(settings.kafka_bootstrap, settings.dead_letter_topic)
    assert Counter(value for value, _ in letters) == Counter(corpus.rejected)
    for value, headers in letters:
        assert headers.get("source") == b"replay" and headers.get("kind"), (value[:80], headers)
        assert headers.get("detail"), (value[:80], headers)
    kinds = Counter(headers["kind"].decode() for _, headers in letters)
    assert {f"rejected_{k}": n for k, n in kinds.items()} == by_kind

    poll_until(
        while_alive(inserter, matches(settings.database_url, "kline_1s", by_key(klines))),
        60,
        "the valid klines",
    )
    assert_landed_exactly(settings.database_url, klines, levels=["1m", "5m"])
    assert inserter.stop() == 0, inserter.tail()
    print(
        f"\nstream fuzz: {size} messages, {len(corpus.rejected)} dead letters of {len(kinds)} kinds"
    )


def test_1000_fuzzed_stream_messages(scenario: Scenario, stages: Stages, tmp_path: Path) -> None:
    run_stream_fuzz(scenario, stages, tmp_path, 1_000, "FUZS")


@pytest.mark.slow
def test_10000_fuzzed_stream_messages(scenario: Scenario, stages: Stages, tmp_path: Path) -> None:
    run_stream_fuzz(scenario, stages, tmp_path, 10_000, "FUZL")


def test_deeply_nested_message_is_a_dead_letter(
    scenario: Scenario, stages: Stages, tmp_path: Path
) -> None:
    names = ("DEEP0USDT",)
    settings = scenario(symbols=names)
    klines = sim_klines(names, 12, past_start(10), 10)
    nested = b'{"stream": "deep0usdt@kline_1s", "data": ' + b"[" * 2000 + b"]" * 2000 + b"}"
    lines = [combined_stream_message(k).encode() for k in klines[:5]]
    lines += [nested, *(combined_stream_message(k).encode() for k in klines[5:])]
    inserter = stages.cli("inserter", settings, "insert")
    producer = replay(stages, settings, tmp_path, lines)
    assert producer.counts()["rejected"] == 1
    letters = read_topic(settings.kafka_bootstrap, settings.dead_letter_topic)
    assert [value for value, _ in letters] == [nested]
    poll_until(matches(settings.database_url, "kline_1s", by_key(klines)), 30, "the klines")
    assert inserter.stop() == 0


ODD_SYMBOLS = ("", "A B", "A\x00B", "X" * 5000, "btcusdt", "ÄÖÜUSDT", "BTC/USDT", "BTC\nUSDT")


def test_odd_symbols_are_dead_letters(scenario: Scenario, stages: Stages, tmp_path: Path) -> None:
    names = ("ODDS0USDT",)
    settings = scenario(symbols=names)
    klines = sim_klines(names, 13, past_start(20), 20)
    odd = [msgspec.structs.replace(klines[0], symbol=s) for s in ODD_SYMBOLS]
    odd_lines = [combined_stream_message(k).encode() for k in odd]
    lines = [combined_stream_message(k).encode() for k in klines[:10]]
    lines += [*odd_lines, *(combined_stream_message(k).encode() for k in klines[10:])]
    inserter = stages.cli("inserter", settings, "insert")
    producer = replay(stages, settings, tmp_path, lines)
    assert producer.counts().get("rejected_bad_symbol", 0) == len(odd_lines)
    letters = dead_letters(settings, len(odd_lines))
    assert Counter(v for v, _ in letters) == Counter(line.strip() for line in odd_lines)
    poll_until(
        while_alive(inserter, matches(settings.database_url, "kline_1s", by_key(klines))),
        30,
        "the klines",
    )
    assert inserter.stop() == 0, inserter.tail()


# --- Bad messages on the klines topic itself ---------------------------------------------------


def publish_raw(settings: Settings, values: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "enable.idempotence": True})
    for value in values:
        producer.produce(settings.klines_topic, value=value, key=b"FAULTY")
    assert producer.flush(30) == 0


def garbage(rng: random.Random, n: int) -> list[bytes]:
    samples = [b"", b"{}", b"[]", b"null", b'["BTCUSDT"]', b'["X", 1, 2]', b"\xff\xfe", b"[1" * 50]
    return [
        rng.choice(samples)
        if rng.random() < 0.3
        else bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
        for _ in range(n)
    ]


def test_undecodable_topic_messages_are_dead_letters(scenario: Scenario, stages: Stages) -> None:
    """Messages on the klines topic that are not klines at all: dead-lettered by the inserter,
    which goes on storing the valid ones."""
    names = ("TOPG0USDT", "TOPG1USDT")
    settings = scenario(symbols=names)
    klines = sim_klines(names, 14, past_start(60), 60)
    junk = garbage(random.Random(3), 500)
    values = [encode(k) for k in klines[:60]] + junk + [encode(k) for k in klines[60:]]
    inserter = stages.cli("inserter", settings, "insert")
    publish_raw(settings, values)
    poll_until(
        while_alive(inserter, matches(settings.database_url, "kline_1s", by_key(klines))),
        30,
        "the valid klines",
    )
    letters = dead_letters(settings, len(junk))
    assert Counter(v for v, _ in letters) == Counter(junk)
    assert all(h.get("kind") == b"undecodable" and h.get("detail") for _, h in letters)
    assert "undecodable message" in inserter.log()
    assert inserter.stop() == 0, inserter.tail()


def poison(kline: Kline) -> list[Kline]:
    """Klines that decode but that kline_1s cannot or must not hold."""
    change = msgspec.structs.replace
    return [
        change(kline, symbol="A\x00B"),  # COPY: invalid byte sequence 0x00
        change(kline, open_time=-(2**62), close_time=-(2**62) + 999),  # timestamptz out of range
        change(kline, open_time=2**62, close_time=2**62 + 999),  # from the future
        change(kline, trades=2**63),  # OverflowError in the int8 COPY dumper
        change(kline, open=Decimal("NaN")),  # stored as numeric NaN
        change(kline, volume=Decimal("Infinity")),  # stored as numeric Infinity
        change(kline, high=kline.low - 1),  # high below low
    ]


def test_poison_klines_on_the_topic_are_dead_letters(scenario: Scenario, stages: Stages) -> None:
    names = ("POIS0USDT", "POIS1USDT")
    settings = scenario(symbols=names)
    klines = sim_klines(names, 15, past_start(60), 60)
    bad = poison(klines[0])
    values = [encode(k) for k in klines[:60]] + [encode(k) for k in bad]
    values += [encode(k) for k in klines[60:]]
    inserter = stages.cli("inserter", settings, "insert")
    publish_raw(settings, values)
    poll_until(
        while_alive(inserter, matches(settings.database_url, "kline_1s", by_key(klines))),
        30,
        "the valid klines, with the inserter alive",
    )
    letters = dead_letters(settings, len(bad))
    assert Counter(v for v, _ in letters) == Counter(encode(k) for k in bad)
    kinds = Counter(h["kind"].decode() for _, h in letters)
    assert kinds["unwritable"] == 2, kinds  # the out-of-range time and trade count
    assert kinds["from_the_future"] == 1, kinds
    assert all(h.get("detail") for _, h in letters)
    assert inserter.stop() == 0, inserter.tail()


def test_fuzz_corpus_is_json_lines() -> None:
    """The recording format itself: one message per line, none empty."""
    klines = sim_klines(("CORP0USDT",), 1, past_start(30), 30)
    corpus = stream_corpus(random.Random(0), 300, klines)
    assert len(corpus.lines) == 300 and all(line and b"\n" not in line for line in corpus.lines)
    assert len(corpus.closed) == len(klines)
    json.loads(corpus.lines[0])
