"""The inserter stages the exchange's decimal strings as text and checks consistency in SQL; every
value on the klines topic must still be stored, skipped or dead-lettered exactly as the Python
rules (decode to ``Decimal``, ``validate``) decide, with the same kind, on both flavours."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from decimal import Decimal

import msgspec
from confluent_kafka import Producer

from cryptochart.core.kline import InvalidKline, Kline, decode, encode, validate
from cryptochart.core.settings import Settings
from cryptochart.ingest.staging import TextKline
from tests.faults.topics import read_topic
from tests.pipeline import as_candle, candles, read_dump, renamed, running_inserter, wait_for

FIRST_180 = "BTCUSDT-1s-2024-03-01.part01.first180rows.csv"
SYMBOL = "CHECKS1"
FUTURE = 2**42  # a Unix ms far past the clock's skew allowance
# Positions in a kline's Kafka value (a JSON array, decimals as strings).
SYM, OPEN_T, CLOSE_T, OPEN, HIGH, LOW, CLOSE, VOLUME, QUOTE, TRADES, TAKER_BASE = range(11)

Edit = Callable[[list[object]], None]


def put(**at: object) -> Edit:
    """An edit setting positions of the array (names as above, lower case)."""
    positions = {name.lower(): i for i, name in enumerate(
        ("SYM", "OPEN_T", "CLOSE_T", "OPEN", "HIGH", "LOW", "CLOSE", "VOLUME", "QUOTE", "TRADES",
         "TAKER_BASE", "TAKER_QUOTE", "CLOSED")
    )}  # fmt: skip

    def edit(values: list[object]) -> None:
        for name, value in at.items():
            values[positions[name]] = value

    return edit


def spelled(position: int, spell: Callable[[str], object]) -> Edit:
    """An edit writing one decimal of the kline another way."""

    def edit(values: list[object]) -> None:
        text = values[position]
        assert isinstance(text, str)
        values[position] = spell(text)

    return edit


def below_low(values: list[object]) -> None:
    values[HIGH] = str(Decimal(str(values[LOW])) - 1)


def open_above_high(values: list[object]) -> None:
    values[OPEN] = str(Decimal(str(values[HIGH])) + 1)


def close_before_open(values: list[object]) -> None:
    values[CLOSE_T] = int(str(values[OPEN_T])) - 1


ARABIC_DIGITS = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")

EDITS: list[Edit] = [
    put(open="NaN"),
    put(low="-1"),
    put(close="0"),
    put(high="Infinity"),
    put(open="sNaN"),  # Python reads it (not finite), PostgreSQL does not
    put(open="-NaN"),
    below_low,
    open_above_high,
    put(volume="-0.1"),
    put(quote="Infinity"),
    put(trades=-1),
    close_before_open,
    put(open_t=FUTURE, close_t=FUTURE + 999),
    put(open_t=FUTURE, close_t=FUTURE + 999, open="NaN"),  # the first rule broken names it
    put(open_t=FUTURE, close_t=FUTURE - 1),
    put(sym="lower1"),
    put(sym="A\x00B"),
    put(sym="123"),
    put(open="abc"),
    put(open="1\x00"),
    put(volume="1\\0"),
    put(closed=False, open="NaN"),  # in progress and broken: set aside all the same
    put(closed=False),  # in progress: skipped
    put(trades=2**63),  # refused by the table
    put(open_t=-(2**62), close_t=-(2**62) + 999),
    spelled(OPEN, lambda t: f"{t[:1]}_{t[1:]}"),  # Python reads 6_1000.5, PostgreSQL does not
    spelled(OPEN, lambda t: f" {t} "),
    spelled(OPEN, lambda t: f"{t}\t"),
    spelled(HIGH, lambda t: f"{t}\n"),
    spelled(LOW, lambda t: t.translate(ARABIC_DIGITS)),
    spelled(CLOSE, lambda t: float(t)),  # a JSON number, read exactly as Decimal
    spelled(VOLUME, lambda t: f"{Decimal(t):E}"),
    spelled(QUOTE, lambda t: t + "0000"),
]
UNWRITABLE = {23, 24}  # the edits the table refuses although Python accepts them


def expected(value: bytes, refused: bool) -> str:
    """What the Python rules make of a value: a dead-letter kind, "skipped" or "stored"."""
    try:
        kline = validate(decode(value))
    except (msgspec.ValidationError, msgspec.DecodeError):
        return "undecodable"
    except InvalidKline as exc:
        return exc.kind
    if refused:
        return "unwritable"
    return "stored" if kline.closed else "skipped"


def edited(kline: Kline, edit: Edit) -> bytes:
    values: list[object] = json.loads(encode(kline))
    edit(values)
    return json.dumps(values).encode()


def test_every_value_is_stored_or_set_aside_as_python_decides(settings: Settings) -> None:
    seconds = renamed(read_dump(FIRST_180), SYMBOL)
    values = [edited(k, e) for k, e in zip(seconds, EDITS, strict=False)]
    fates = [expected(v, i in UNWRITABLE) for i, v in enumerate(values)]
    assert Counter(fates)["stored"] == 8 and Counter(fates)["skipped"] == 1, fates
    untouched = seconds[len(EDITS) :]
    raw = Producer({"bootstrap.servers": settings.kafka_bootstrap, "enable.idempotence": True})
    for value in [*values, *(encode(k) for k in untouched)]:
        raw.produce(settings.klines_topic, key=SYMBOL.encode(), value=value)
    assert raw.flush(30) == 0
    stored = [decode(v) for v, fate in zip(values, fates, strict=True) if fate == "stored"]
    wanted = sorted(as_candle(k) for k in [*stored, *untouched])
    kinds = {v: f for v, f in zip(values, fates, strict=True) if f not in ("stored", "skipped")}

    def letters() -> dict[bytes, str]:
        found = read_topic(settings.kafka_bootstrap, settings.dead_letter_topic)
        return {v: h["kind"].decode() for v, h in found if v in kinds}

    with running_inserter(settings):
        wait_for(lambda: candles(settings, "kline_1s", SYMBOL) == wanted, 60, "the stored klines")
        wait_for(lambda: len(letters()) == len(kinds), 60, "the dead letters")
    assert letters() == kinds


def test_the_text_path_reads_every_field_of_a_kline() -> None:
    """The inserter's ``TextKline`` mirrors ``Kline`` field by field (decimals as their text):
    a field added to one and not the other would shift every staged column."""
    kline_fields = msgspec.structs.fields(Kline)
    text_fields = msgspec.structs.fields(TextKline)
    assert [(f.name, f.default) for f in text_fields] == [(f.name, f.default) for f in kline_fields]
    for k, t in zip(kline_fields, text_fields, strict=True):
        assert t.type is (str if k.type is Decimal else k.type), k.name
    real = read_dump(FIRST_180)[0]
    text = msgspec.json.decode(encode(real), type=TextKline)
    for f in kline_fields:
        value = getattr(real, f.name)
        assert getattr(text, f.name) == (str(value) if isinstance(value, Decimal) else value)
