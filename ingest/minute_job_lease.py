"""One minute job works at a time: the working one holds a PostgreSQL session-level advisory lock
(the lease) on the connection it works with; other minute jobs stand by and try for it every
second.

The lock belongs to the database session, not to a row that must expire: when the working job
dies, even by kill -9, the server sees its socket close, ends the session and frees the lock at
once, and a standby takes over at its next try. The session settings below bound the cases where
no socket closes: a holder whose host or network vanished is dropped by the server's keepalives
within about 8 s, and a holder that dies mid-statement is noticed within a second
(``client_connection_check_interval``) instead of when its refresh ends. Advisory locks are per
database, so pipelines on other databases of the same server never wait on each other.

The lease saves duplicated work; correctness never rests on it: a pass rolls up only checkpoints
it has claimed, which the inserter no longer widens, and moves what lies past its cut back to
pending when it marks them, so two jobs working at once (a holder cut off but still running)
re-aggregate, never skip.
"""

from __future__ import annotations

import logging
import os
import socket
import threading

import psycopg
from psycopg.conninfo import make_conninfo

from cryptochart.core.database import Conn

log = logging.getLogger(__name__)

LEASE_KEY = 0x6372_796D  # pg_advisory_lock key of the minute job's lease (migrate uses another)
RETRY_SECONDS = 1.0  # how often a standby tries for the lease
# Server side: a vanished client is dropped after 5 s idle + 3 probes 1 s apart; a statement
# whose client has gone is cancelled within 1 s.
SESSION_SETTINGS = {
    "tcp_keepalives_idle": "5",
    "tcp_keepalives_interval": "1",
    "tcp_keepalives_count": "3",
    "client_connection_check_interval": "1000",
}
# Client side: the holder notices a dead server or network within about 10 s, so it stops working
# for a lease it may have lost.
CLIENT_KEEPALIVES = {
    "keepalives": "1",
    "keepalives_idle": "5",
    "keepalives_interval": "1",
    "keepalives_count": "3",
    "tcp_user_timeout": "10000",
}


def lease_dsn(dsn: str) -> str:
    """``dsn`` with client-side keepalives (ignored over a Unix socket); a malformed ``dsn``
    unchanged, for connecting to report it."""
    try:
        return make_conninfo(dsn, **CLIENT_KEEPALIVES)
    except psycopg.ProgrammingError:
        return dsn


def worker_name() -> str:
    """How this process names itself to the server (``application_name``): host and pid."""
    return f"cryptochart minute-job {socket.gethostname()}:{os.getpid()}"


def prepare_session(conn: Conn) -> None:
    """Name the session and give it the keepalive and disconnect-check settings above."""
    conn.execute("SELECT set_config('application_name', %s, false)", (worker_name(),))
    for name, value in SESSION_SETTINGS.items():
        conn.execute("SELECT set_config(%s, %s, false)", (name, value))


def try_lease(conn: Conn) -> bool:
    """Take the lease on ``conn``'s session if it is free (or already held here)."""
    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (LEASE_KEY,)).fetchone()
    return bool(row and row[0])


def lease_holder(conn: Conn) -> str | None:
    """The ``application_name`` of the session holding the lease in this database, if any."""
    row = conn.execute(
        """SELECT coalesce(a.application_name, '')
           FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
           WHERE l.locktype = 'advisory' AND l.granted
             AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
             AND l.classid = %s AND l.objid = %s AND l.objsubid = 1""",
        (LEASE_KEY >> 32, LEASE_KEY & 0xFFFF_FFFF),
    ).fetchone()
    return None if row is None else str(row[0])


def wait_for_lease(conn: Conn, stop: threading.Event) -> bool:
    """Block until ``conn``'s session holds the lease (True) or ``stop`` is set (False). Logs
    one line on standing by and one on taking over."""
    conn.autocommit = True  # the session settings and the lock outlive any transaction
    prepare_session(conn)
    standing_by = False
    while not stop.is_set():
        if try_lease(conn):
            log.info("minute job %s the lease: working", "took over" if standing_by else "holds")
            return True
        if not standing_by:
            log.info("minute job standing by: %s works", lease_holder(conn) or "another job")
            standing_by = True
        stop.wait(RETRY_SECONDS)
    return False
