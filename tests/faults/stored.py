"""What the database holds, compared exactly with what was produced."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from cryptochart.core.database import connect
from cryptochart.core.kline import Kline
from tests.faults.expected import (
    LEVELS,
    SECOND_MS,
    Key,
    Row,
    by_key,
    candles,
    final_buckets,
)
from tests.faults.waiting import poll_until

_ROW_SQL = """SELECT symbol, (extract(epoch FROM open_time) * 1000)::bigint,
                     (extract(epoch FROM close_time) * 1000)::bigint,
                     open, high, low, close, volume, quote_volume, trades,
                     taker_buy_base_volume, taker_buy_quote_volume{extra}
              FROM {relation} WHERE symbol = ANY(%s)"""


def stored(url: str, relation: str, symbols: Iterable[str]) -> dict[Key, Row]:
    """Rows of ``relation`` for ``symbols`` keyed by (symbol, open_ms); aggregates end with
    ``seconds``. A duplicate key would raise (the primary key should make it impossible)."""
    extra = "" if relation == "kline_1s" else ", seconds"
    query = _ROW_SQL.format(extra=extra, relation=relation)
    with connect(url, timeout=5) as conn:
        rows = conn.execute(query, (list(symbols),)).fetchall()
    out: dict[Key, Row] = {}
    for symbol, *rest in rows:
        key = (str(symbol), int(str(rest[0])))
        assert key not in out, f"{relation} holds {key} twice"
        out[key] = tuple(rest)
    return out


def count_rows(url: str, relation: str, symbols: Iterable[str]) -> int:
    with connect(url, timeout=5) as conn:
        row = conn.execute(
            f"SELECT count(*) FROM {relation} WHERE symbol = ANY(%s)", (list(symbols),)
        ).fetchone()
    return int(str(row[0])) if row else 0


def difference(expected: Mapping[Key, Row], actual: Mapping[Key, Row]) -> str:
    """Empty when equal, else a one-line account of what differs."""
    missing = sorted(expected.keys() - actual.keys())
    extra = sorted(actual.keys() - expected.keys())
    changed = sorted(k for k in expected.keys() & actual.keys() if expected[k] != actual[k])
    if not (missing or extra or changed):
        return ""
    parts = [f"{len(expected)} expected, {len(actual)} stored"]
    for label, keys in (("missing", missing), ("unexpected", extra), ("different", changed)):
        if keys:
            parts.append(f"{len(keys)} {label} (first {keys[0]})")
    if changed:
        k = changed[0]
        parts.append(f"expected {expected[k]} got {actual[k]}")
    return "; ".join(parts)


def matches(url: str, relation: str, expected: Mapping[Key, Row]) -> Callable[[], str | bool]:
    """A poll check: ``relation`` holds exactly ``expected`` for the symbols in it."""
    symbols = {s for s, _ in expected}

    def check() -> str | bool:
        diff = difference(expected, stored(url, relation, symbols))
        return diff or True

    return check


def matches_where(
    url: str, relation: str, expected: Mapping[Key, Row], keep: Callable[[Key], bool]
) -> Callable[[], str | bool]:
    """Like :func:`matches`, over the keys ``keep`` accepts only."""
    wanted = {k: v for k, v in expected.items() if keep(k)}
    symbols = {s for s, _ in expected}

    def check() -> str | bool:
        actual = {k: v for k, v in stored(url, relation, symbols).items() if keep(k)}
        return difference(wanted, actual) or True

    return check


def assert_landed_exactly(
    url: str, klines: Sequence[Kline], timeout: float = 60.0, levels: Iterable[str] = LEVELS
) -> None:
    """Wait for kline_1s to hold exactly ``klines`` and each level exactly their aggregation."""
    poll_until(matches(url, "kline_1s", by_key(klines)), timeout, "kline_1s = the klines")
    for level in levels:
        expected = candles(klines, LEVELS[level])
        poll_until(matches(url, f"kline_{level}", expected), timeout, f"kline_{level} = Python's")


def assert_final_levels(
    url: str,
    klines: Sequence[Kline],
    min_minutes: int,
    required: Iterable[str] = ("1m",),
    timeout: float = 60.0,
) -> dict[str, int]:
    """Wait for every level to hold exactly Python's aggregation of ``klines`` in each final
    bucket (before its symbol's last one). Every symbol must have at least ``min_minutes`` final
    minutes, and each ``required`` level at least one final bucket, so the comparison is never
    empty; a level the klines do not span is compared where it has final buckets (none: skipped).
    Returns the candles compared per level."""
    compared: dict[str, int] = {}
    symbols = {k.symbol for k in klines}
    for level, bucket_ms in LEVELS.items():
        final = final_buckets(klines, bucket_ms)
        wanted = {key: row for key, row in candles(klines, bucket_ms).items() if final(key)}
        if level == "1m":
            per_symbol = {s: sum(1 for key in wanted if key[0] == s) for s in symbols}
            assert min(per_symbol.values(), default=0) >= min_minutes, (
                f"the run spans too few final minutes to compare: {per_symbol}, "
                f"at least {min_minutes} per symbol wanted"
            )
        assert wanted or level not in required, f"no final {level} bucket to compare"
        if wanted:
            poll_until(
                matches_where(url, f"kline_{level}", wanted, final),
                timeout,
                f"kline_{level} = Python's aggregation, for every final bucket",
            )
        compared[level] = len(wanted)
    return compared


def aggregated_checkpoints(url: str) -> int:
    """Checkpoints the minute job has marked done: grows with each pass that found data."""
    with connect(url, timeout=5) as conn:
        row = conn.execute(
            "SELECT count(*) FROM ingest_checkpoint WHERE aggregated_at IS NOT NULL"
        ).fetchone()
    return int(str(row[0])) if row else 0


def covered(url: str, symbols: Sequence[str], first_ms: int, through_ms: int) -> str | bool:
    """A poll check: every symbol has every second in [first_ms, through_ms] in kline_1s."""
    want = (through_ms - first_ms) // SECOND_MS + 1
    with connect(url, timeout=2) as conn:
        rows = conn.execute(
            "SELECT symbol, count(*) FROM kline_1s WHERE symbol = ANY(%s) "
            "AND open_time BETWEEN timestamptz 'epoch' + %s * interval '1 ms' "
            "AND timestamptz 'epoch' + %s * interval '1 ms' GROUP BY symbol",
            (list(symbols), first_ms, through_ms),
        ).fetchall()
        have: dict[object, object] = {symbol: count for symbol, count in rows}
    short = {s: want - int(str(have.get(s, 0))) for s in symbols if have.get(s, 0) != want}
    return f"seconds missing per symbol: {short}" if short else True


def first_second(url: str, symbols: Sequence[str]) -> int | None:
    """The earliest open time (ms) in kline_1s of ``symbols``, once every one of them has rows."""
    with connect(url, timeout=5) as conn:
        rows = conn.execute(
            "SELECT symbol, (extract(epoch FROM min(open_time)) * 1000)::bigint FROM kline_1s "
            "WHERE symbol = ANY(%s) GROUP BY symbol",
            (list(symbols),),
        ).fetchall()
    if len(rows) < len(symbols):
        return None
    return min(int(str(ms)) for _, ms in rows)
