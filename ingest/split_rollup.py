"""Plain PostgreSQL's 1m roll-up split over two connections: the symbols in two halves, each
half upserted by a transaction of its own at the same time, so a minute of many symbols is final
in about half the time on a server with two cores or more (one statement runs on one core).

The halves hold disjoint symbols, so the two transactions never touch the same row. Either may
commit without the other: a failure leaves the pass's checkpoints claimed, and the next pass
rolls every window up again, as after any failure before the mark.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from cryptochart.core.database import Conn, DatabaseUnavailable, connect
from cryptochart.ingest.minute_windows import Window

log = logging.getLogger(__name__)

MIN_SYMBOLS = 64  # fewer symbols than this roll up on one connection: a thread costs more

Rollup = Callable[[Conn, list[Window]], None]


def halves(windows: list[Window]) -> tuple[list[Window], list[Window]]:
    """The windows in two parts with no symbol in both, half the symbols each."""
    symbols = sorted({w.symbol for w in windows})
    first = set(symbols[: len(symbols) // 2])
    return [w for w in windows if w.symbol in first], [w for w in windows if w.symbol not in first]


class Helper:
    """The second connection, opened when first wanted and again after a failure."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._conn: Conn | None = None
        self.splits = 0  # roll-ups that ran split

    def get(self) -> Conn | None:
        """The connection, or None when it cannot be opened (one connection does the work)."""
        if self._conn is None or self._conn.closed:
            try:
                self._conn = connect(self.dsn, timeout=5)
            except DatabaseUnavailable as exc:
                log.warning("rolling up on one connection: %s", exc)
                return None
            self._conn.autocommit = True
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def rollup_split(main: Conn, helper: Helper, windows: list[Window], rollup: Rollup) -> None:
    """``rollup`` over ``windows``: half on ``main`` and half on the helper at once when there
    are enough symbols, each in a transaction of its own (both connections in autocommit)."""
    other = helper.get() if len({w.symbol for w in windows}) >= MIN_SYMBOLS else None
    if other is None:
        with main.transaction():
            rollup(main, windows)
        return
    mine, theirs = halves(windows)
    helper.splits += 1
    failed: list[BaseException] = []

    def run_theirs() -> None:
        try:
            with other.transaction():
                rollup(other, theirs)
        except BaseException as exc:  # re-raised on the calling thread
            failed.append(exc)

    thread = threading.Thread(target=run_theirs, name="minute-job-rollup")
    thread.start()
    try:
        with main.transaction():
            rollup(main, mine)
    finally:
        thread.join()
    if failed:
        helper.close()
        raise failed[0]
