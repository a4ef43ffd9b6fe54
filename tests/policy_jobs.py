"""TimescaleDB's policy jobs (retention and columnstore) in a test database: left scheduled, its
job scheduler runs them on its own clock, mid-test; tests that test them run them themselves."""

from __future__ import annotations

from cryptochart.core.database import Conn

POLICIES = ("policy_retention", "policy_compression")


def set_jobs(conn: Conn, change: str) -> None:
    """``alter_job(job, <change>)`` for every policy job of the database."""
    conn.execute(
        f"SELECT alter_job(job_id, {change}) FROM timescaledb_information.jobs "
        "WHERE proc_name = ANY(%s)",
        (list(POLICIES),),
    )
