"""Waking the minute job when a minute may have become final.

The inserter notifies a channel in the transaction of every batch that writes a minute's last
second (PostgreSQL delivers it on commit, to listeners in the same database only); the minute
job listens and runs at once, or after its poll interval when nothing came (a minute closed by
the grace for late klines, a late kline re-aggregating its minute).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg

CHANNEL = "cryptochart_minute_closed"
MINUTE_MS = 60_000
LAST_SECOND_MS = MINUTE_MS - 1_000
LISTEN = f"LISTEN {CHANNEL}"


def closed_minute(open_times_ms: Iterable[object]) -> int | None:
    """The newest minute (its open time, Unix ms) whose last second is among these 1s open
    times, None when none is."""
    closed = [t for t in open_times_ms if isinstance(t, int) and t % MINUTE_MS == LAST_SECOND_MS]
    return max(closed) - LAST_SECOND_MS if closed else None


def notify(cur: psycopg.Cursor[Any], minute_ms: int) -> None:
    """Wake the listeners when the current transaction commits; the payload names the minute."""
    cur.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(minute_ms)))


def listen(conn: psycopg.Connection[Any]) -> None:
    """Subscribe ``conn`` (in autocommit) to the wake-ups."""
    conn.execute(LISTEN)


def wait(conn: psycopg.Connection[Any], seconds: float) -> bool:
    """Block until a wake-up arrives on a listening ``conn`` (True) or ``seconds`` pass (False).
    Wake-ups that arrived meanwhile are taken at once, so none is lost between runs."""
    for _ in conn.notifies(timeout=seconds, stop_after=1):
        return True
    return False
