"""Encoded history pages kept in memory: least recently used first out, within a byte budget.

An entry remembers what it depends on, so the checkpoints can drop exactly the pages a write
touched: the symbol, the 1s open times ``[lo, hi)`` its candles were made of, the newest
roll-up (``tag``) visible when it was last known current, and the number of the newest check
(``checked``) that vouches for it. :mod:`cryptochart.api.history_cache` decides what goes in and
when an entry may be served.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from datetime import datetime


@dataclass(slots=True)
class Entry:
    symbol: str
    lo: int  # first 1s open time (Unix ms) the page depends on
    hi: int  # exclusive end
    body: bytes
    tag: datetime | None  # the newest roll-up of the symbol that the page is known to include
    checked: int  # the newest check (a sequence number) under which the page was current

    def overlaps(self, first: int, last: int) -> bool:
        """Whether 1s klines opening in [first, last] fall inside the page's range."""
        return first < self.hi and last >= self.lo


class PageCache:
    """A bounded LRU of encoded pages, indexed by symbol for invalidation."""

    def __init__(self, budget_bytes: int) -> None:
        self.budget = budget_bytes
        self.size = 0
        self._entries: OrderedDict[Hashable, Entry] = OrderedDict()
        self._by_symbol: dict[str, set[Hashable]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable) -> Entry | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def peek(self, key: Hashable) -> Entry | None:
        """The entry, leaving its place in the eviction order."""
        return self._entries.get(key)

    def put(self, key: Hashable, entry: Entry) -> None:
        if len(entry.body) > self.budget:
            return
        self.drop(key)
        self._entries[key] = entry
        self._by_symbol.setdefault(entry.symbol, set()).add(key)
        self.size += len(entry.body)
        while self.size > self.budget:
            self.drop(next(iter(self._entries)))

    def drop(self, key: Hashable) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        self.size -= len(entry.body)
        keys = self._by_symbol[entry.symbol]
        keys.discard(key)
        if not keys:
            del self._by_symbol[entry.symbol]

    def of_symbol(self, symbol: str) -> Iterator[tuple[Hashable, Entry]]:
        """The symbol's entries (a copy: dropping while iterating is safe)."""
        for key in list(self._by_symbol.get(symbol, ())):
            yield key, self._entries[key]
