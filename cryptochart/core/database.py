"""Connecting to PostgreSQL with errors a person can act on."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

Conn = psycopg.Connection[tuple[object, ...]]
AsyncConn = psycopg.AsyncConnection[tuple[Any, ...]]


class DatabaseUnavailable(psycopg.OperationalError):
    """The database cannot be reached with the configured URL."""


def describe(url: str) -> str:
    """``user@host:port/dbname`` of a URL, without its password."""
    try:
        p = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "<unparsable URL>"
    host = f"{p.get('host', 'localhost')}:{p.get('port', 5432)}"
    return f"{p.get('user', '')}@{host}/{p.get('dbname', '')}"


def with_dbname(url: str, dbname: str, **overrides: str) -> str:
    """``url`` naming database ``dbname`` instead (and any other parameter in ``overrides``)."""
    params = {**conninfo_to_dict(url), "dbname": dbname, **overrides}
    return make_conninfo(**{k: str(v) for k, v in params.items() if v is not None})


def connect(url: str, timeout: int = 10) -> Conn:
    """Open a connection; a bad or unreachable URL raises DatabaseUnavailable in one line."""
    try:
        return psycopg.connect(url, connect_timeout=timeout)
    except psycopg.ProgrammingError as exc:
        raise DatabaseUnavailable(f"CRYPTOCHART_DATABASE_URL is not a valid URL: {exc}") from None
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else "no answer"
        raise DatabaseUnavailable(f"cannot connect to {describe(url)}: {reason}") from None
