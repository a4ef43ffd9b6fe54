"""Fuzzed Binance combined-stream messages, each of a kind whose fate is known in advance: a valid
closed kline (stored), a valid in-progress kline or a control message (neither stored nor
rejected), or a broken message (rejected to the dead-letter topic)."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from cryptochart.core.kline import Kline
from tests.fakes.binance import combined_stream_message
from tests.fakes.market import in_progress

Message = dict[str, Any]

STRING_FIELDS = ("s", "i", "o", "c", "h", "l", "v", "q", "V", "Q")
INT_FIELDS = ("t", "T", "n")
DECIMAL_FIELDS = ("o", "c", "h", "l", "v", "q", "V", "Q")
BAD_DECIMALS = (
    "1e5",
    "NaN",
    "nan",
    "Infinity",
    "-Infinity",
    "",
    " 1",
    "1 ",
    "1.",
    ".5",
    "+1",
    "0x1A",
    "1,5",
    "\uff11\uff12",  # fullwidth digits
    "1" * 31,
    "1." + "1" * 31,
    "--1",
    "1.2.3",
    "\u0661",
)


@dataclass
class Corpus:
    lines: list[bytes] = field(default_factory=list)
    closed: list[Kline] = field(default_factory=list)  # to be stored
    in_progress: int = 0  # published, not stored
    ignored: int = 0  # control replies and serverShutdown notices: neither
    rejected: list[bytes] = field(default_factory=list)  # to the dead-letter topic, as read


def _message(kline: Kline) -> Message:
    decoded: Message = json.loads(combined_stream_message(kline))
    return decoded


def _wrong_type(rng: random.Random, key: str) -> object:
    if key in INT_FIELDS or key == "E":
        return rng.choice(["123", 1.5, None, [], {}, True, "1e3"])
    if key == "x":
        return rng.choice(["true", 1, None, [], "yes"])
    return rng.choice([1.5, 7, None, [], {}, True])


def _broken(rng: random.Random, kline: Kline) -> bytes:
    """One message that the stream parser must reject, by one of many faults."""
    msg = _message(kline)
    data, k = msg["data"], msg["data"]["k"]
    fault = rng.randrange(16)
    if fault == 0:  # random bytes, no line breaks; '#' keeps them from being JSON
        size = rng.choice([1, 10, 200, 5000])
        noise = bytes(rng.choice([b for b in range(256) if b not in (10, 13)]) for _ in range(size))
        return b"#" + noise
    if fault == 1:  # cut short
        text = json.dumps(msg).encode()
        return text[: rng.randrange(1, len(text) - 1)]
    if fault == 2:
        del k[rng.choice([*INT_FIELDS, *STRING_FIELDS, "x"])]
    elif fault == 3:
        target = rng.choice([msg, data])
        del target[rng.choice(list(target))]
    elif fault == 4:
        key = rng.choice([*INT_FIELDS, *STRING_FIELDS, "x"])
        k[key] = _wrong_type(rng, key)
    elif fault == 5:
        k[rng.choice(DECIMAL_FIELDS)] = rng.choice(BAD_DECIMALS)
    elif fault == 6:  # high below low
        k["h"], k["l"] = k["l"], str(Decimal(k["h"]) + Decimal("0.1"))
    elif fault == 7:  # a price of zero or less
        k[rng.choice(("o", "c", "h", "l"))] = rng.choice(["0", "-1", "0.00000000", "-0.5"])
    elif fault == 8:  # a negative volume
        k[rng.choice(("v", "q", "V", "Q"))] = rng.choice(["-1", "-0.00000001", "-1.5"])
    elif fault == 9:  # impossible times
        key = rng.choice(["t", "T", "E"])
        value = rng.choice([-1000, 10**13, 10**18, -(10**18)])
        if key == "E":
            data["E"] = value
        else:
            k[key] = value
    elif fault == 10:  # an open time off the second, or a close time off its end
        if rng.random() < 0.5:
            k["t"] += rng.randrange(1, 999)
        else:
            k["T"] += rng.choice([-998, 1, 1000])
    elif fault == 11:  # symbol, stream and interval that disagree
        choice = rng.randrange(3)
        if choice == 0:
            data["s"] = "OTHER" + data["s"]
        elif choice == 1:
            msg["stream"] = "ethusdt@kline_1s"
        else:
            k["i"] = rng.choice(["1m", "1h", "", "1S"])
    elif fault == 12:
        data["e"] = rng.choice(["trade", "aggTrade", "", "KLINE", 5])
    elif fault == 13:  # trade counts beyond any bigint sum
        k["n"] = rng.choice([2**62, 2**63, 2**64, 10**30, -(2**64)])
    elif fault == 14:  # not an object where one must be
        return rng.choice([b"5", b'"text"', b"[]", b"null", b"true", b'{"data": 5}', b"{}"])
    else:
        msg["data"] = rng.choice([5, "kline", [], None, {"e": "kline"}])
    return json.dumps(msg, ensure_ascii=rng.random() < 0.5).encode()


def stream_corpus(
    rng: random.Random, size: int, klines: Sequence[Kline], valid_share: float = 0.1
) -> Corpus:
    """``size`` messages: ``klines`` (closed, in order, each once) spread among broken ones,
    plus a few in-progress klines, control replies and serverShutdown notices."""
    corpus = Corpus()
    pending = list(klines)
    extras: list[Callable[[], bytes]] = [
        lambda: json.dumps({"result": None, "id": rng.randrange(100)}).encode(),
        lambda: json.dumps({"code": 2, "msg": "Invalid request", "id": None}).encode(),
        lambda: json.dumps(
            {"stream": "!serverShutdown", "data": {"e": "serverShutdown", "E": 1_700_000_000_000}}
        ).encode(),
    ]
    while len(corpus.lines) < size:
        roll = rng.random()
        if pending and (roll < valid_share or size - len(corpus.lines) <= len(pending)):
            kline = pending.pop(0)
            corpus.lines.append(combined_stream_message(kline).encode())
            corpus.closed.append(kline)
        elif roll < valid_share + 0.01 and klines:
            sample = rng.choice(klines)
            corpus.lines.append(
                combined_stream_message(in_progress(sample, sample.open_time + 500)).encode()
            )
            corpus.in_progress += 1
        elif roll < valid_share + 0.02:
            corpus.lines.append(rng.choice(extras)())
            corpus.ignored += 1
        else:
            line = _broken(rng, rng.choice(klines)).strip()
            if not line:
                continue
            corpus.lines.append(line)
            corpus.rejected.append(line)
    return corpus
