"""Per-symbol order and de-duplication of a live feed's klines, and the holes it must repair.

A live feed may see the same closed kline twice (two connections overlap during a handover) or miss
some (a connection dropped). The sequencer lets each closed kline through once, in open_time order.
After a connection opened or ended ("suspect"), the next closed kline of each symbol is checked:
if it does not follow the last one, the missing range is handed to ``request_repair`` and the
symbol's live klines are held until the repaired ones (from REST) have gone out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import NamedTuple

from cryptochart.core.kline import Kline

log = logging.getLogger(__name__)


class Gap(NamedTuple):
    """Closed klines of ``symbol`` opening in [start_ms, end_ms) that the feed did not deliver."""

    symbol: str
    start_ms: int
    end_ms: int


class _SymbolState:
    __slots__ = ("held", "last_closed", "repairing", "suspect")

    def __init__(self, last_closed: int | None) -> None:
        self.last_closed = last_closed
        self.suspect = False
        self.repairing = False
        self.held: list[Kline | None] = []  # None: a connection changed at this point


class KlineSequencer:
    """Lets each closed kline through once, in order, per symbol; asks for repairs of holes.

    ``resume_after`` maps symbols to the open_time of the last closed kline already stored, so the
    first connection repairs what was missed while the feed was down.
    """

    def __init__(
        self,
        interval_ms: int,
        request_repair: Callable[[Gap], None],
        resume_after: Mapping[str, int] | None = None,
    ) -> None:
        self._step = interval_ms
        self._request_repair = request_repair
        self._symbols = {s: _SymbolState(t) for s, t in (resume_after or {}).items()}
        self.duplicates = 0
        self.gaps_requested = 0
        self.gaps_left = 0

    def suspect(self, symbols: Iterable[str]) -> None:
        """A connection carrying ``symbols`` opened or ended: their next closed kline is checked."""
        for symbol in symbols:
            state = self._state(symbol)
            if not state.repairing:
                state.suspect = True
            elif not state.held or state.held[-1] is not None:
                state.held.append(None)

    def accept(self, kline: Kline) -> list[Kline]:
        """The klines to emit now that the feed delivered ``kline`` (often just it, or none)."""
        state = self._state(kline.symbol)
        if state.repairing:
            if kline.closed:
                state.held.append(kline)
            return []
        if not kline.closed:
            fresh = state.last_closed is None or kline.open_time > state.last_closed
            return [kline] if fresh else []
        return self._closed(state, kline)

    def repaired(self, kline: Kline) -> list[Kline]:
        """A closed kline fetched to fill a gap: emitted unless already seen."""
        state = self._state(kline.symbol)
        if state.last_closed is not None and kline.open_time <= state.last_closed:
            self.duplicates += 1
            return []
        state.last_closed = kline.open_time
        return [kline]

    def repair_done(self, symbol: str) -> list[Kline]:
        """The repair of ``symbol`` ended: release the live klines held meanwhile."""
        state = self._state(symbol)
        state.repairing = False
        held, state.held = state.held, []
        released: list[Kline] = []
        for index, kline in enumerate(held):
            if state.repairing:  # a connection changed meanwhile and another hole needs repair
                state.held.extend(held[index:])
                break
            if kline is None:
                state.suspect = True
                continue
            self._note_unrepaired(state, kline)
            released.extend(self._closed(state, kline))
        return released

    def _note_unrepaired(self, state: _SymbolState, kline: Kline) -> None:
        last = state.last_closed
        if last is None or state.suspect or kline.open_time <= last + self._step:
            return
        self.gaps_left += 1
        log.warning(
            "%s: %d closed klines before open_time %d could not be repaired",
            kline.symbol,
            (kline.open_time - last) // self._step - 1,
            kline.open_time,
        )

    def _closed(self, state: _SymbolState, kline: Kline) -> list[Kline]:
        last = state.last_closed
        if last is not None and kline.open_time <= last:
            self.duplicates += 1
            return []
        if last is not None and state.suspect and kline.open_time > last + self._step:
            state.suspect = False
            state.repairing = True
            state.held.append(kline)
            self.gaps_requested += 1
            self._request_repair(Gap(kline.symbol, last + self._step, kline.open_time))
            return []
        state.suspect = False
        state.last_closed = kline.open_time
        return [kline]

    def _state(self, symbol: str) -> _SymbolState:
        state = self._symbols.get(symbol)
        if state is None:
            state = self._symbols[symbol] = _SymbolState(None)
        return state
