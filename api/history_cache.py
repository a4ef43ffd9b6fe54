"""History pages served from memory while they are final, and never once they are stale.

A page is kept when it lies wholly before its level's newest materialised bucket (no forming
candle in it) and no pending checkpoint covers it. The checkpoints are the signal: the inserter
widens a pending checkpoint in the transaction that writes a late kline, and the minute job marks
it ``aggregated_at`` in the transaction that follows its roll-up, so a page is stale exactly when
a checkpoint over its range is pending, or was rolled up after the newest roll-up the page saw
(its ``tag``). Plain reads of one indexed table: a read replica answers them as well as the
primary, where LISTEN would not work.

A cached page is served only after a check that started after the request arrived: the
requests that arrive until a check's statement goes (an event-loop turn after the first, at
least) share it (one query for all their symbols), and checks run side by side, so their
database round trip bounds no throughput. A page read from the database asks the same question
first, in its own snapshot, so a page read before a roll-up that it missed is never kept under a
newer tag. Tags rely on the minute job's marks committing one after
another (one minute job works at a time). The newest page is split: its final rows are a page
like any other, and only the rows from the newest materialised bucket on are read each time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from cryptochart.api import history
from cryptochart.api.history import PageRow
from cryptochart.api.intervals import INTERVALS, ceil_to, floor_to
from cryptochart.api.page_cache import Entry, PageCache
from cryptochart.api.pool import Pool, standalone
from cryptochart.core.database import AsyncConn

log = logging.getLogger(__name__)

NO_CACHE = 1  # a byte budget that keeps nothing: CRYPTOCHART_API_HISTORY_CACHE_BYTES's "off"
NEVER = datetime.max.replace(tzinfo=UTC)  # "rolled up after this": no roll-up at all

# Per symbol: its newest roll-up, and each checkpoint pending, or rolled up after ``since``
# (NULL: after nothing seen, so every one), as [first, last] 1s open times in Unix ms.
_CHANGES = """
SELECT s.symbol, t.through, c.first_ms, c.last_ms, c.aggregated_at
FROM unnest(%s::text[], %s::timestamptz[]) AS s(symbol, since)
CROSS JOIN LATERAL (
    SELECT max(aggregated_at) AS through FROM ingest_checkpoint i WHERE i.symbol = s.symbol
) t
LEFT JOIN LATERAL (
    SELECT floor(extract(epoch FROM first_open_time) * 1000)::bigint AS first_ms,
           floor(extract(epoch FROM last_open_time) * 1000)::bigint AS last_ms, aggregated_at
    FROM ingest_checkpoint i
    WHERE i.symbol = s.symbol
      AND (i.aggregated_at IS NULL
           OR i.aggregated_at > s.since
           OR (s.since IS NULL AND i.aggregated_at IS NOT NULL))
) c ON true
"""


@dataclass(frozen=True, slots=True)
class Change:
    first: int
    last: int
    aggregated_at: datetime | None  # None: pending

    def touches(self, entry: Entry) -> bool:
        """Whether this write may differ from what ``entry`` holds."""
        newer = self.aggregated_at is None or entry.tag is None or self.aggregated_at > entry.tag
        return newer and entry.overlaps(self.first, self.last)


@dataclass(frozen=True, slots=True)
class Changes:
    through: datetime | None  # the symbol's newest roll-up
    writes: list[Change]


async def changes(conn: AsyncConn, since: dict[str, datetime | None]) -> dict[str, Changes]:
    """Each symbol's newest roll-up and its checkpoints pending or rolled up after ``since``."""
    symbols = list(since)
    cur = await conn.execute(_CHANGES, (symbols, [since[s] for s in symbols]))
    out: dict[str, Changes] = {}
    for symbol, through, first, last, aggregated_at in await cur.fetchall():
        found = out.setdefault(symbol, Changes(through, []))
        if first is not None:
            found.writes.append(Change(first, last, aggregated_at))
    return out


@dataclass(frozen=True, slots=True)
class PageRequest:
    """One /api/v1/klines request, as the cache keys it."""

    symbol: str
    interval: str
    start: int | None
    end: int | None
    limit: int
    with_seconds: bool
    with_stats: bool


Render = Callable[[list[PageRow]], bytes]


def page_end(request: PageRequest) -> int:
    """The open time just past the page's last possible candle (its ``end`` bucket included)."""
    interval = INTERVALS[request.interval]
    end = request.end
    return history.END_OF_TIME if end is None else floor_to(end, interval) + interval.ms


def depends_on(request: PageRequest, page: list[PageRow]) -> tuple[int, int]:
    """The open times [lo, hi) whose 1s klines make the page: a write elsewhere leaves it as is."""
    interval = INTERVALS[request.interval]
    hi = page_end(request)
    full = len(page) == request.limit
    if request.start is not None:
        lo = ceil_to(request.start, interval)
        return lo, (page[-1][0] + interval.ms if full else hi)
    return (page[0][0] if full else 0), hi


def joined(older: bytes, newer: bytes) -> bytes:
    """Two encoded JSON arrays of rows as one."""
    if older == b"[]":
        return newer
    if newer == b"[]":
        return older
    return older[:-1] + b"," + newer[1:]


class HistoryCache:
    """Pages of ``pool`` in a :class:`PageCache`, checked against the checkpoints."""

    def __init__(self, pool: Pool, budget_bytes: int) -> None:
        self.pool = pool
        self.pages = PageCache(budget_bytes)
        self.enabled = budget_bytes > NO_CACHE
        self.checks_started = 0
        self._forming: tuple[set[str], asyncio.Future[int | None]] | None = None
        self._running: set[asyncio.Task[None]] = set()
        self.hits = 0
        self.misses = 0

    async def page(
        self,
        request: PageRequest,
        read: Callable[[AsyncConn], Awaitable[list[PageRow]]],
        render: Render,
    ) -> bytes:
        """The encoded page: from memory when a check since the request arrived vouches for it,
        else ``read`` from the database (and kept when final). The newest page is its final
        rows (kept like any page) followed by the rows from the newest materialised bucket on,
        read each time."""
        if not self.enabled:
            self.misses += 1
            return await self._read(request, read, render)
        if self.pages.get(request) is not None:
            number = await self._check(request.symbol)
            entry = self.pages.get(request)
            if number is not None and entry is not None and entry.checked >= number:
                self.hits += 1
                return entry.body
        if request.start is None and INTERVALS[request.interval].finer is not None:
            newest = await self._newest(request, render)
            if newest is not None:
                return newest
        self.misses += 1
        return await self._read(request, read, render)

    async def _newest(self, request: PageRequest, render: Render) -> bytes | None:
        """The newest ``limit`` candles up to ``end`` as the final page before the newest
        materialised bucket and the rows from it on; None when the page holds no such bucket."""
        interval = INTERVALS[request.interval]
        async with standalone(self.pool) as conn:
            found = await history.newest_head(
                conn, interval, request.symbol, page_end(request), request.limit
            )
        if found is None:
            return None
        newest, head = found
        rest = request.limit - len(head)
        if rest <= 0:
            return render(head)
        older = replace(request, end=newest - 1, limit=rest)

        async def read_older(conn: AsyncConn) -> list[PageRow]:
            return await history.klines(conn, interval, request.symbol, None, newest - 1, rest)

        return joined(await self.page(older, read_older, render), render(head))

    async def _read(
        self,
        request: PageRequest,
        read: Callable[[AsyncConn], Awaitable[list[PageRow]]],
        render: Render,
    ) -> bytes:
        started = self.checks_started
        # The newest page (neither bound) always holds the forming candle.
        keep = self.enabled and (request.end is not None or request.start is not None)
        async with self.pool.connection() as conn:
            # First, so the page is read in the snapshot these checkpoints were read in.
            state = (await changes(conn, {request.symbol: NEVER}))[request.symbol] if keep else None
            page = await read(conn)
            interval = INTERVALS[request.interval]
            newest = (
                await history.newest_open_time(conn, interval, request.symbol) if keep else None
            )
        body = render(page)
        if state is not None and newest is not None and page:
            lo, hi = depends_on(request, page)
            entry = Entry(request.symbol, lo, hi, body, state.through, started)
            if hi <= newest and not any(w.touches(entry) for w in state.writes):
                self.pages.put(request, entry)
        return body

    async def _check(self, symbol: str) -> int | None:
        """Wait for a check of ``symbol`` that starts after this call; its number, or None when
        it failed. Requests share a check until its statement goes; checks run side by side."""
        if self._forming is None:
            self._forming = (set(), asyncio.get_running_loop().create_future())
            task = asyncio.create_task(self._run_check(), name="history-cache-check")
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        symbols, done = self._forming
        symbols.add(symbol)
        return await asyncio.shield(done)

    async def _run_check(self) -> None:
        assert self._forming is not None
        forming = self._forming
        symbols, done = forming
        try:
            async with standalone(self.pool) as conn:
                # Requests keep joining until the statement is about to go, a loop turn later
                # at least: its snapshot still begins after each of them arrived.
                await asyncio.sleep(0)
                if self._forming is forming:
                    self._forming = None
                self.checks_started += 1
                number = self.checks_started
                await self._check_symbols(conn, symbols, number)
        except Exception:
            if self._forming is forming:
                self._forming = None
            log.exception("history cache check failed; reading pages from the database")
            done.set_result(None)
        else:
            done.set_result(number)

    async def _check_symbols(self, conn: AsyncConn, symbols: set[str], number: int) -> None:
        """Drop every page of ``symbols`` a write may have changed; vouch for the rest."""
        considered: dict[str, list[tuple[Hashable, Entry]]] = {}
        since: dict[str, datetime | None] = {}
        for symbol in symbols:
            entries = list(self.pages.of_symbol(symbol))
            if not entries:
                continue
            considered[symbol] = entries
            tags = [e.tag for _, e in entries]
            since[symbol] = None if None in tags else min(t for t in tags if t is not None)
        if not since:
            return
        found = await changes(conn, since)
        for symbol, entries in considered.items():
            state = found[symbol]
            for key, entry in entries:
                if self.pages.peek(key) is not entry:
                    continue  # replaced or dropped meanwhile: checked at its own read
                if any(w.touches(entry) for w in state.writes):
                    self.pages.drop(key)
                    continue
                if state.through is not None and (entry.tag is None or state.through > entry.tag):
                    entry.tag = state.through
                entry.checked = max(entry.checked, number)
