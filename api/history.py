"""Candle history from PostgreSQL, complete up to the newest 1s kline.

The aggregate relations lag: the minute job materialises a bucket about a second after each
minute, so the newest bucket of a level is missing or partial. Every read therefore takes a
level's materialised rows only before its newest bucket, and recomputes the buckets from there
on out of the finer level, recursively down to ``kline_1s``: a 1d tail folds at most a day of
1h rows, a few 15m/5m/1m rows and under a minute of 1s rows, and the 1s part is folded in SQL
(a forming minute comes back as one row, not sixty). A level that is empty or lags far
behind is recomputed only over the buckets a page needs: windows of at most ``limit`` buckets,
walked from the page's end and jumping over stretches without data.
All reads are ranges of the (symbol, open_time) primary key.

A page (:func:`klines`) takes its materialised rows as PostgreSQL writes them: epoch
milliseconds and ``numeric::text``, the exact digits the API sends, so the rows of a page cost
no ``datetime`` or ``Decimal`` per candle; only the folded tail is computed with ``Decimal``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from psycopg import sql

from cryptochart.api.candles import SECOND_MS, Candle, KlineRowWithSeconds, fold
from cryptochart.api.intervals import INTERVALS, Interval, ceil_to, floor_to
from cryptochart.core.database import AsyncConn

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MS = timedelta(milliseconds=1)
END_OF_TIME = 253_402_214_400_000  # 9999-12-31T00:00Z: day-aligned, every bound stays below it
MAX_TIME = END_OF_TIME - 1 - 86_400_000  # the latest time a request may name


def to_datetime(ms: int) -> datetime:
    return EPOCH + ms * ONE_MS


def to_ms(value: datetime) -> int:
    return (value - EPOCH) // ONE_MS


_COLUMNS = sql.SQL(
    "open_time, close_time, open, high, low, close, volume, quote_volume, trades, "
    "taker_buy_base_volume, taker_buy_quote_volume"
)


# A page's row as sent: Binance's row with the count of 1s klines behind it appended.
PageRow = KlineRowWithSeconds

# The same columns as the wire writes them: times as Unix ms (floored, like to_ms), decimals as
# numeric's own text (plain digits, scale kept: what ``candles.text`` writes of the Decimal).
_PAGE_COLUMNS = sql.SQL(
    "floor(extract(epoch FROM open_time) * 1000)::bigint, open::text, high::text, low::text, "
    "close::text, volume::text, floor(extract(epoch FROM close_time) * 1000)::bigint, "
    "quote_volume::text, trades, taker_buy_base_volume::text, taker_buy_quote_volume::text, '0'"
)


def range_query(interval: Interval, descending: bool, *, page: bool = False) -> sql.Composed:
    """Rows of one symbol with open_time in [%s, %s), in key order, at most %s (NULL: all);
    with ``page``, as :data:`PageRow`."""
    seconds = sql.SQL("1") if interval.finer is None else sql.SQL("seconds")
    order = sql.SQL("DESC" if descending else "ASC")
    return sql.SQL(
        "SELECT {columns}, {seconds} FROM {relation} "
        "WHERE symbol = %s AND open_time >= %s AND open_time < %s "
        "ORDER BY open_time {order} LIMIT %s"
    ).format(
        columns=_PAGE_COLUMNS if page else _COLUMNS,
        seconds=seconds,
        relation=sql.Identifier(interval.relation),
        order=order,
    )


def newest_query(interval: Interval, *, page: bool = False) -> sql.Composed:
    """Open time of one symbol's newest row; with ``page``, that row as a :data:`PageRow`."""
    seconds = sql.SQL("1" if interval.finer is None else "seconds")
    columns = sql.SQL("{}, {}").format(_PAGE_COLUMNS, seconds) if page else sql.SQL("open_time")
    return sql.SQL(
        "SELECT {columns} FROM {relation} WHERE symbol = %s ORDER BY open_time DESC LIMIT 1"
    ).format(columns=columns, relation=sql.Identifier(interval.relation))


def nearest_query(interval: Interval, before: bool) -> sql.Composed:
    """Open time of one symbol's row nearest to %s: the newest before it, or the oldest at or
    after it."""
    condition, order = ("<", "DESC") if before else (">=", "ASC")
    return sql.SQL(
        "SELECT open_time FROM {relation} WHERE symbol = %s AND open_time {condition} %s "
        "ORDER BY open_time {order} LIMIT 1"
    ).format(
        relation=sql.Identifier(interval.relation),
        condition=sql.SQL(condition),
        order=sql.SQL(order),
    )


def _fold_query(interval: Interval, where: str, before: str = "") -> sql.Composed:
    """Candles of ``interval`` folded in SQL from one symbol's 1s klines matching ``where``,
    ascending: :func:`candles.fold` (numeric sums are exact, so the digits are the same), as
    :data:`_COLUMNS`, the count of seconds and the newest second's open time. ``{step}`` in
    ``where`` and ``before`` (a WITH clause) is the interval."""
    step = sql.SQL("{}::interval").format(sql.Literal(f"{interval.ms // SECOND_MS} seconds"))
    return sql.SQL(
        before + "SELECT date_bin({step}, open_time, 'epoch'::timestamptz) AS bucket, "
        "max(close_time), (array_agg(open ORDER BY open_time))[1], max(high), min(low), "
        "(array_agg(close ORDER BY open_time DESC))[1], sum(volume), sum(quote_volume), "
        "sum(trades)::bigint, sum(taker_buy_base_volume), sum(taker_buy_quote_volume), "
        "count(*)::int, max(open_time) FROM kline_1s WHERE " + where + " "
        "GROUP BY bucket ORDER BY bucket"
    ).format(step=step)


def folded_query(interval: Interval) -> sql.Composed:
    """Candles of ``interval`` of one symbol (%s) with open_time in [%s, %s), folded in SQL."""
    return _fold_query(interval, "symbol = %s AND open_time >= %s AND open_time < %s")


def newest_folded_query(interval: Interval) -> sql.Composed:
    """Of one symbol's 1s klines in [lo, hi), the newest ``buckets`` buckets of ``interval``
    counted back from the bucket of the newest of them, folded in SQL (named parameters): the
    window :func:`newest_folded` walks, found and folded in one statement."""
    top = (
        "WITH top AS MATERIALIZED ("
        "SELECT date_bin({step}, open_time, 'epoch'::timestamptz) + {step} AS t FROM kline_1s "
        "WHERE symbol = %(symbol)s AND open_time >= %(lo)s AND open_time < %(hi)s "
        "ORDER BY open_time DESC LIMIT 1) "
    )
    return _fold_query(
        interval,
        "symbol = %(symbol)s AND open_time < (SELECT t FROM top) "
        "AND open_time >= greatest(%(lo)s, (SELECT t FROM top) - %(buckets)s * {step})",
        top,
    )


_ASCENDING = {name: range_query(i, descending=False) for name, i in INTERVALS.items()}
_DESCENDING = {name: range_query(i, descending=True) for name, i in INTERVALS.items()}
_PAGE_ASCENDING = {
    name: range_query(i, descending=False, page=True) for name, i in INTERVALS.items()
}
_PAGE_DESCENDING = {
    name: range_query(i, descending=True, page=True) for name, i in INTERVALS.items()
}
_FOLDED = {name: folded_query(i) for name, i in INTERVALS.items() if i.finer == "1s"}
_NEWEST_FOLDED = {name: newest_folded_query(i) for name, i in INTERVALS.items() if i.finer == "1s"}
_NEWEST = {name: newest_query(i) for name, i in INTERVALS.items()}
_NEWEST_PAGE_ROW = {name: newest_query(i, page=True) for name, i in INTERVALS.items()}
_BEFORE = {name: nearest_query(i, before=True) for name, i in INTERVALS.items()}
_FROM = {name: nearest_query(i, before=False) for name, i in INTERVALS.items()}


def _candle(row: tuple[Any, ...], interval: Interval) -> Candle:
    open_time, close_time = to_ms(row[0]), to_ms(row[1])
    # A 1s kline closes 999 ms after it opens, so an aggregate's newest second opened here.
    last_second = open_time if interval.finer is None else close_time + 1 - SECOND_MS
    return _candle_at(row, open_time, close_time, last_second)


def _candle_at(row: tuple[Any, ...], open_time: int, close_time: int, last_second: int) -> Candle:
    """A row of :data:`_COLUMNS` and the count of seconds, its times given as Unix ms."""
    open_, high, low, close, volume, quote_volume, trades, base, quote, seconds = row[2:12]
    return Candle(
        open_time,
        close_time,
        open_,
        high,
        low,
        close,
        volume,
        quote_volume,
        trades,
        base,
        quote,
        seconds,
        last_second,
    )


async def rows(
    conn: AsyncConn,
    interval: Interval,
    symbol: str,
    lo: int,
    hi: int,
    *,
    descending: bool = False,
    limit: int | None = None,
) -> list[Candle]:
    """Materialised rows of ``interval`` with open_time in [lo, hi), in the order asked."""
    query = (_DESCENDING if descending else _ASCENDING)[interval.name]
    cur = await conn.execute(query, (symbol, to_datetime(lo), to_datetime(hi), limit))
    return [_candle(row, interval) for row in await cur.fetchall()]


def _folded_candles(rows: list[tuple[Any, ...]]) -> list[Candle]:
    """Rows of a fold query (its newest second's open time last) as candles."""
    return [_candle_at(r, to_ms(r[0]), to_ms(r[1]), to_ms(r[12])) for r in rows]


async def folded(
    conn: AsyncConn, interval: Interval, symbol: str, lo: int, hi: int
) -> list[Candle]:
    """Candles of ``interval`` (rolled up from 1s) in [lo, hi) folded from ``kline_1s`` in SQL."""
    cur = await conn.execute(_FOLDED[interval.name], (symbol, to_datetime(lo), to_datetime(hi)))
    return _folded_candles(await cur.fetchall())


async def folded_window(
    conn: AsyncConn, interval: Interval, symbol: str, lo: int, hi: int, buckets: int
) -> list[Candle]:
    """Candles of ``interval`` (rolled up from 1s) in the ``buckets`` buckets of [lo, hi) that
    end with the newest 1s kline there, folded from ``kline_1s`` in SQL."""
    params = {"symbol": symbol, "lo": to_datetime(lo), "hi": to_datetime(hi), "buckets": buckets}
    cur = await conn.execute(_NEWEST_FOLDED[interval.name], params)
    return _folded_candles(await cur.fetchall())


async def page_rows(
    conn: AsyncConn,
    interval: Interval,
    symbol: str,
    lo: int,
    hi: int,
    *,
    descending: bool = False,
    limit: int | None = None,
) -> list[PageRow]:
    """Like :func:`rows`, as the wire writes them."""
    query = (_PAGE_DESCENDING if descending else _PAGE_ASCENDING)[interval.name]
    cur = await conn.execute(query, (symbol, to_datetime(lo), to_datetime(hi), limit))
    return await cur.fetchall()


def page_row(candle: Candle) -> PageRow:
    """A computed candle as a page's row."""
    return (*candle.row(), candle.seconds)


async def newest_open_time(conn: AsyncConn, interval: Interval, symbol: str) -> int | None:
    """Open time of the newest materialised row of ``interval``, None when it has none."""
    cur = await conn.execute(_NEWEST[interval.name], (symbol,))
    row = await cur.fetchone()
    return None if row is None else to_ms(row[0])


T = TypeVar("T")


def _candle_key(candle: Candle) -> tuple[int, int]:
    return candle.open_time, candle.seconds


def _page_key(row: PageRow) -> tuple[int, int]:
    return row[0], row[12]


def _splice(materialised: list[T], tail: list[T], key: Callable[[T], tuple[int, int]]) -> list[T]:
    """Materialised candles followed by the recomputed tail. Where both hold the bucket of the
    newest materialised row, the one made of more seconds wins: normally the recomputed one,
    but the row itself once the finer level's retention has dropped part of it. ``key`` gives
    a candle's (open time, seconds)."""
    if materialised and tail:
        (last_open, last_seconds), (tail_open, tail_seconds) = key(materialised[-1]), key(tail[0])
        if tail_open == last_open:
            newest = materialised[-1] if last_seconds > tail_seconds else tail[0]
            return [*materialised[:-1], newest, *tail[1:]]
    return materialised + tail


async def _tail(conn: AsyncConn, interval: Interval, symbol: str, lo: int, hi: int) -> list[Candle]:
    """Candles of ``interval`` in [lo, hi) folded from the complete finer level."""
    if lo >= hi or interval.finer is None:
        return []
    if interval.finer == "1s":
        return await folded(conn, interval, symbol, lo, hi)
    return fold(await complete(conn, INTERVALS[interval.finer], symbol, lo, hi), interval)


def finer_levels(interval: Interval) -> list[Interval]:
    """The levels ``interval`` is rolled up from, down to 1s."""
    out = []
    while interval.finer is not None:
        interval = INTERVALS[interval.finer]
        out.append(interval)
    return out


async def finer_data_near(
    conn: AsyncConn, interval: Interval, symbol: str, at: int, *, before: bool
) -> int | None:
    """The bucket of ``interval`` holding the finer data nearest ``at`` (the newest before it,
    or the oldest at or after it), over every finer level; None when there is none."""
    found = []
    for level in finer_levels(interval):
        cur = await conn.execute(
            (_BEFORE if before else _FROM)[level.name], (symbol, to_datetime(at))
        )
        row = await cur.fetchone()
        if row is not None:
            found.append(to_ms(row[0]))
    if not found:
        return None
    return floor_to(max(found) if before else min(found), interval)


async def newest_folded(
    conn: AsyncConn, interval: Interval, symbol: str, lo: int, hi: int, limit: int
) -> list[Candle]:
    """The newest ``limit`` candles of ``interval`` in [lo, hi) folded from the finer level,
    ascending: recomputed over windows of at most the buckets still wanted, from ``hi`` down,
    each empty stretch skipped in one probe (for a level rolled up from 1s, the probe and the
    fold are one statement). Never folds more than ``limit`` buckets' worth of data beyond the
    page (bounds bucket-aligned)."""
    out: list[Candle] = []
    top = hi
    while top > lo and len(out) < limit:
        wanted = limit - len(out)
        if interval.finer == "1s":  # the window's top found by the fold itself: one statement
            window = await folded_window(conn, interval, symbol, lo, top, wanted)
            if not window:
                break
            bottom = max(lo, window[-1].open_time + interval.ms - wanted * interval.ms)
            out = window + out
            top = bottom
            continue
        bottom = max(lo, top - wanted * interval.ms)
        out = await _tail(conn, interval, symbol, bottom, top) + out
        if len(out) >= limit or bottom <= lo:
            break
        nearest = await finer_data_near(conn, interval, symbol, bottom, before=True)
        if nearest is None or nearest < lo:
            break
        top = nearest + interval.ms
    return out[-limit:]


async def oldest_folded(
    conn: AsyncConn, interval: Interval, symbol: str, lo: int, hi: int, limit: int
) -> list[Candle]:
    """The oldest ``limit`` candles of ``interval`` in [lo, hi) folded from the finer level, like
    :func:`newest_folded` but walking up from ``lo``."""
    out: list[Candle] = []
    bottom = lo
    while bottom < hi and len(out) < limit:
        top = min(hi, bottom + (limit - len(out)) * interval.ms)
        out += await _tail(conn, interval, symbol, bottom, top)
        if len(out) >= limit or top >= hi:
            break
        nearest = await finer_data_near(conn, interval, symbol, top, before=False)
        if nearest is None or nearest >= hi:
            break
        bottom = nearest
    return out[:limit]


async def complete(
    conn: AsyncConn, interval: Interval, symbol: str, lo: int, hi: int
) -> list[Candle]:
    """Every candle of ``interval`` with open_time in [lo, hi), ascending, the not yet
    materialised ones folded from the finer level. ``lo`` and ``hi`` are bucket-aligned."""
    if interval.finer is None:
        return await rows(conn, interval, symbol, lo, hi)
    newest = await newest_open_time(conn, interval, symbol)
    if newest is None:
        return await _tail(conn, interval, symbol, lo, hi)
    materialised = await rows(conn, interval, symbol, lo, min(hi, newest + interval.ms))
    tail = await _tail(conn, interval, symbol, max(lo, newest), hi)
    return _splice(materialised, tail, _candle_key)


async def klines(
    conn: AsyncConn,
    interval: Interval,
    symbol: str,
    start: int | None,
    end: int | None,
    limit: int,
) -> list[PageRow]:
    """Binance's /api/v3/klines paging: candles with start <= openTime <= end, ascending; the
    first ``limit`` of them when ``start`` is given, else the newest ``limit``; as page rows."""
    hi = END_OF_TIME if end is None else floor_to(end, interval) + interval.ms
    if start is not None:
        return await _first(conn, interval, symbol, ceil_to(start, interval), hi, limit)
    return await _last(conn, interval, symbol, hi, limit)


async def _first(
    conn: AsyncConn, interval: Interval, symbol: str, lo: int, hi: int, limit: int
) -> list[PageRow]:
    if interval.finer is None:
        return await page_rows(conn, interval, symbol, lo, hi, limit=limit)
    newest = await newest_open_time(conn, interval, symbol)
    if newest is None:
        return [page_row(c) for c in await oldest_folded(conn, interval, symbol, lo, hi, limit)]
    upto = min(hi, newest + interval.ms)
    materialised = await page_rows(conn, interval, symbol, lo, upto, limit=limit)
    if len(materialised) == limit and materialised[-1][0] < newest:
        return materialised  # the page ends before the newest bucket
    # The newest materialised bucket comes again from the finer level, to splice it.
    wanted = limit - len(materialised) + 1
    tail = await oldest_folded(conn, interval, symbol, max(lo, newest), hi, wanted)
    return _splice(materialised, [page_row(c) for c in tail], _page_key)[:limit]


async def _last(
    conn: AsyncConn, interval: Interval, symbol: str, hi: int, limit: int
) -> list[PageRow]:
    if interval.finer is None:
        newest_first = await page_rows(conn, interval, symbol, 0, hi, descending=True, limit=limit)
        return newest_first[::-1]
    newest = await newest_open_time(conn, interval, symbol)
    if newest is None:
        return [page_row(c) for c in await newest_folded(conn, interval, symbol, 0, hi, limit)]
    tail = await newest_folded(conn, interval, symbol, newest, hi, limit)
    # The newest bucket is fetched even when the tail alone fills the page, to splice it.
    wanted = max(1, limit - len(tail) + 1)
    upto = min(hi, newest + interval.ms)
    older = await page_rows(conn, interval, symbol, 0, upto, descending=True, limit=wanted)
    return _splice(older[::-1], [page_row(c) for c in tail], _page_key)[-limit:]


async def current(conn: AsyncConn, interval: Interval, symbol: str, at: int) -> Candle | None:
    """The candle of ``interval`` whose bucket holds ``at``, complete up to the newest 1s kline."""
    lo = floor_to(at, interval)
    candles = await complete(conn, interval, symbol, lo, lo + interval.ms)
    return candles[-1] if candles else None


async def newest_second(conn: AsyncConn, symbol: str) -> int | None:
    """Open time of the symbol's newest 1s kline."""
    return await newest_open_time(conn, INTERVALS["1s"], symbol)


async def newest_head(
    conn: AsyncConn, interval: Interval, symbol: str, hi: int, limit: int
) -> tuple[int, list[PageRow]] | None:
    """The newest page's rows from its level's newest materialised bucket on (that bucket
    spliced with its recomputation, then the folded tail), and that bucket's open time: the
    rest of the page is the materialised rows before it, which are final. None when the level
    has no materialised row at or before ``hi``'s bucket (the page is computed whole). Needs no
    snapshot across its statements: a bucket materialised after the first is recomputed from
    1s klines anyway, and the splice keeps the version made of more seconds."""
    if interval.finer is None:
        return None
    cur = await conn.execute(_NEWEST_PAGE_ROW[interval.name], (symbol,))
    row: PageRow | None = await cur.fetchone()
    if row is None or hi <= row[0]:
        return None
    newest = row[0]
    tail = await newest_folded(conn, interval, symbol, newest, hi, limit)
    return newest, _splice([row], [page_row(c) for c in tail], _page_key)[-limit:]
