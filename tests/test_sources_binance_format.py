"""Binance's kline formats: WebSocket messages, REST rows and CSV dump rows, good and bad."""

from __future__ import annotations

import copy
import csv
import json
import logging
import time
from decimal import Decimal
from typing import Any

import hypothesis.strategies as st
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings

from cryptochart.core.kline import InvalidKline, Kline, validate
from cryptochart.ingest.sources.base import Rejected
from cryptochart.ingest.sources.binance.messages import (
    ControlReply,
    ServerShutdown,
    kline_from_csv_row,
    kline_from_rest_row,
    parse_stream_message,
)
from cryptochart.ingest.sources.rejections import Rejections
from tests.pipeline import DATA

SYMBOLS = frozenset({"BTCUSDT", "ETHUSDT"})

GOOD: dict[str, Any] = {
    "stream": "btcusdt@kline_1s",
    "data": {
        "e": "kline",
        "E": 1709251201003,
        "s": "BTCUSDT",
        "k": {
            "t": 1709251200000,
            "T": 1709251200999,
            "s": "BTCUSDT",
            "i": "1s",
            "f": 3441553400,
            "L": 3441553509,
            "o": "61130.99000000",
            "c": "61141.09000000",
            "h": "61141.10000000",
            "l": "61130.98000000",
            "v": "9.48506000",
            "n": 110,
            "x": True,
            "q": "579883.04137270",
            "V": "5.61715000",
            "Q": "343404.62059580",
            "B": "0",
        },
    },
}

EXPECTED = Kline(
    symbol="BTCUSDT",
    open_time=1709251200000,
    close_time=1709251200999,
    open=Decimal("61130.99000000"),
    high=Decimal("61141.10000000"),
    low=Decimal("61130.98000000"),
    close=Decimal("61141.09000000"),
    volume=Decimal("9.48506000"),
    quote_volume=Decimal("579883.04137270"),
    trades=110,
    taker_buy_base_volume=Decimal("5.61715000"),
    taker_buy_quote_volume=Decimal("343404.62059580"),
    closed=True,
    event_time=1709251201003,
)

REST_ROW: list[object] = [
    1709251200000,
    "61130.99000000",
    "61141.10000000",
    "61130.98000000",
    "61141.09000000",
    "9.48506000",
    1709251200999,
    "579883.04137270",
    110,
    "5.61715000",
    "343404.62059580",
    "0",
]


def message(**changes: object) -> bytes:
    """GOOD with changes at dotted paths (``data.k.o``); the value ``...`` deletes the key."""
    body = copy.deepcopy(GOOD)
    for path, value in changes.items():
        *parents, key = path.split("__")
        node = body
        for parent in parents:
            node = node[parent]
        if value is ...:
            del node[key]
        else:
            node[key] = value
    return json.dumps(body).encode()


def kind_of(raw: bytes | str) -> str:
    with pytest.raises(InvalidKline) as caught:
        parse_stream_message(raw, SYMBOLS)
    return caught.value.kind


def test_a_kline_message_becomes_the_exact_kline() -> None:
    assert parse_stream_message(message(), SYMBOLS) == EXPECTED
    assert parse_stream_message(json.dumps(GOOD), SYMBOLS) == EXPECTED  # text frames too
    kline = parse_stream_message(message(), SYMBOLS)
    assert isinstance(kline, Kline)
    assert (
        str(kline.quote_volume) == "579883.04137270"
    )  # the exchange's digits, no float on the way


def test_an_in_progress_kline_keeps_its_flag() -> None:
    kline = parse_stream_message(message(data__k__x=False), SYMBOLS)
    assert isinstance(kline, Kline)
    assert kline.closed is False


def test_server_shutdown_and_control_replies() -> None:
    shutdown = b'{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1770123456789}}'
    assert parse_stream_message(shutdown) == ServerShutdown(event_time=1770123456789)
    assert parse_stream_message(b'{"result":null,"id":1}') == ControlReply(1, None)
    refused = parse_stream_message(b'{"code":2,"msg":"Invalid request","id":7}')
    assert refused == ControlReply(7, "code 2: Invalid request")


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        (b"{not json", "not_json"),
        (b"\xff\xfe", "not_json"),
        (b"[]", "bad_type"),
        (b"{}", "missing_field"),
        (message(data=...), "missing_field"),
        (message(data__k__o=...), "missing_field"),
        (message(data__E=...), "missing_field"),
        (message(data__e="trade"), "unexpected_event"),
        (message(data__k__o="abc"), "bad_number"),
        (message(data__k__o="NaN"), "bad_number"),
        (message(data__k__o="1e5"), "bad_number"),
        (message(data__k__o="1_000"), "bad_number"),
        (message(data__k__o=" 1.5"), "bad_number"),
        (message(data__k__n=2**70), "bad_number"),
        (message(data__k__o=61130.99), "bad_type"),
        (message(data__k__t="1709251200000"), "bad_type"),
        (message(data__k__x="true"), "bad_type"),
        (message(data__k__h="61130.00000000"), "high_below_low"),
        (message(data__k__o="61150.00000000"), "open_close_outside_range"),
        (message(data__k__v="-1.00000000"), "negative_volume"),
        (message(data__k__l="0", data__k__o="0"), "bad_price"),
        (message(data__k__i="1m"), "wrong_interval"),
        (message(data__k__T=1709251201999), "bad_close_time"),
        (message(data__k__t=1709251200500, data__k__T=1709251201499), "misaligned_open_time"),
        (message(data__k__t=-1000, data__k__T=-1), "bad_time"),
        (message(data__E=10**15), "bad_time"),
        (message(data__s="ETHUSDT"), "inconsistent_symbol"),
        (message(stream="ethusdt@kline_1s"), "inconsistent_stream"),
        (
            message(stream="xrpusdt@kline_1s", data__s="XRPUSDT", data__k__s="XRPUSDT"),
            "unknown_symbol",
        ),
    ],
)
def test_every_bad_message_has_a_kind(raw: bytes, kind: str) -> None:
    assert kind_of(raw) == kind


def test_a_rest_row_becomes_the_exact_kline() -> None:
    expected = Kline(**{**_fields(EXPECTED), "event_time": 0})
    assert kline_from_rest_row("BTCUSDT", REST_ROW) == expected


@pytest.mark.parametrize(
    ("row", "kind"),
    [
        ({"t": 1}, "bad_row"),
        (REST_ROW[:10], "bad_row"),
        ([*REST_ROW[:1], 61130.99, *REST_ROW[2:]], "bad_number"),
        (["1709251200000", *REST_ROW[1:]], "bad_number"),
        ([*REST_ROW[:8], True, *REST_ROW[9:]], "bad_number"),
        ([*REST_ROW[:2], "61000.00000000", *REST_ROW[3:]], "high_below_low"),
        ([*REST_ROW[:6], 1709251201999, *REST_ROW[7:]], "bad_close_time"),
    ],
)
def test_bad_rest_rows_have_a_kind(row: object, kind: str) -> None:
    with pytest.raises(InvalidKline) as caught:
        kline_from_rest_row("BTCUSDT", row)
    assert caught.value.kind == kind


def test_the_real_1s_dump_parses_to_exact_decimals() -> None:
    with (DATA / "BTCUSDT-1s-2024-03-01.part01.first180rows.csv").open(newline="") as file:
        rows = list(csv.reader(file))
    klines = [kline_from_csv_row("BTCUSDT", row, "1s") for row in rows]
    assert len(klines) == 180
    assert klines[0] == Kline(**{**_fields(EXPECTED), "event_time": 0})
    assert [k.open_time for k in klines] == list(range(1709251200000, 1709251380000, 1000))
    assert sum(k.trades for k in klines[:60]) > 0


def test_microsecond_dumps_are_read_as_milliseconds() -> None:
    row = [str(x) for x in REST_ROW]
    row[0], row[6] = "1709251200000000", "1709251200999999"
    assert kline_from_csv_row("BTCUSDT", row, "1s") == kline_from_csv_row(
        "BTCUSDT", [str(x) for x in REST_ROW], "1s"
    )


@pytest.mark.parametrize(
    ("change", "kind"),
    [
        ({0: "open_time"}, "bad_number"),
        ({1: "61,130.99"}, "bad_number"),
        ({8: "1.5"}, "bad_number"),
        ({3: "61141.20000000"}, "high_below_low"),
    ],
)
def test_bad_csv_rows_have_a_kind(change: dict[int, str], kind: str) -> None:
    row = [str(x) for x in REST_ROW]
    for index, value in change.items():
        row[index] = value
    with pytest.raises(InvalidKline) as caught:
        kline_from_csv_row("BTCUSDT", row, "1s")
    assert caught.value.kind == kind


def test_a_short_csv_row_is_a_bad_row() -> None:
    with pytest.raises(InvalidKline) as caught:
        kline_from_csv_row("BTCUSDT", ["1709251200000", "1"])
    assert caught.value.kind == "bad_row"


def test_rejections_log_each_kind_once(caplog: pytest.LogCaptureFixture) -> None:
    rejections = Rejections("binance", logging.getLogger("test.rejections"))
    for raw in (b"{", b"{", message(data__k__o="x"), b"{"):
        try:
            parse_stream_message(raw)
        except InvalidKline as exc:
            rejected = rejections.record(exc, raw)
            assert rejected.raw == raw and rejected.source == "binance"
    assert rejections.counts == {"not_json": 3, "bad_number": 1}
    assert len([r for r in caplog.records if "rejected input" in r.getMessage()]) == 2


# --- Fuzzing: whatever arrives, the parser returns a valid kline or names what was wrong ---------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
    | st.sampled_from(["1.5", "0", "-1", "61141.10000000", "1e3", "NaN", "BTCUSDT", "1s"]),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4)
    ),
    max_leaves=8,
)

PATHS = [
    ("stream",),
    ("data",),
    ("data", "e"),
    ("data", "E"),
    ("data", "s"),
    ("data", "k"),
    *[("data", "k", key) for key in GOOD["data"]["k"]],
]


@st.composite
def mutated_messages(draw: st.DrawFn) -> bytes:
    body = copy.deepcopy(GOOD)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        path = draw(st.sampled_from(PATHS))
        node: Any = body
        for key in path[:-1]:
            if not isinstance(node, dict) or key not in node:
                break
            node = node[key]
        else:
            if isinstance(node, dict):
                if draw(st.booleans()):
                    node.pop(path[-1], None)
                else:
                    node[path[-1]] = draw(json_values)
    return json.dumps(body).encode()


def check_never_crashes(raw: bytes) -> None:
    rejections = Rejections("fuzz", logging.getLogger("test.fuzz"))
    try:
        result = parse_stream_message(raw, SYMBOLS)
    except InvalidKline as exc:
        rejected = rejections.record(exc, raw)
        assert isinstance(rejected, Rejected) and rejected.kind and rejected.raw == raw
        return
    assert isinstance(result, Kline | ServerShutdown | ControlReply)
    if isinstance(result, Kline):
        assert validate(result) is result
        assert result.symbol in SYMBOLS


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_messages())
def test_fuzzed_messages_become_klines_or_rejections(raw: bytes) -> None:
    check_never_crashes(raw)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()))
def test_arbitrary_input_becomes_a_kline_or_a_rejection(raw: bytes) -> None:
    check_never_crashes(raw)


def _fields(kline: Kline) -> dict[str, Any]:
    return {name: getattr(kline, name) for name in kline.__struct_fields__}


def test_a_kline_from_the_future_is_refused_by_its_own_kind() -> None:
    """A clock far ahead (the format allows years up to 2286) must not become every view's
    newest candle: more than a minute ahead of this machine is refused, at the parser and at
    every later stage that validates (inserter, API intake)."""
    ahead = (time.time_ns() // 1_000_000 // 1000 + 3600) * 1000
    future = message(data__k__t=ahead, data__k__T=ahead + 999, data__E=ahead + 1000)
    assert kind_of(future) == "from_the_future"
    now = 1_709_251_200_000
    near = kline_from_rest_row(
        "BTCUSDT", [now + 30_000, *REST_ROW[1:6], now + 30_999, *REST_ROW[7:]]
    )
    assert validate(near, now) is near  # within the allowed skew
    later = msgspec.structs.replace(near, open_time=now + 61_000, close_time=now + 61_999)
    with pytest.raises(InvalidKline) as caught:
        validate(later, now)
    assert caught.value.kind == "from_the_future"
