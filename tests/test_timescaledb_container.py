"""The TimescaleDB flavour on Timescale's own image (the one compose.yaml runs), where a Docker
engine is reachable; elsewhere the same migrations run on the locally built server."""

from __future__ import annotations

import re

import psycopg
import pytest

from cryptochart.core.settings import ROOT
from tests.test_schema import AGGREGATES, KLINE_COLUMNS, columns


def docker_engine_reason() -> str | None:
    """None when a Docker engine answers, else why the test cannot run here."""
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env(timeout=3).ping()
    except Exception as exc:
        return f"no Docker engine reachable ({type(exc).__name__}); runs where Docker exists"
    return None


@pytest.mark.skipif(docker_engine_reason() is not None, reason=str(docker_engine_reason()))
def test_timescaledb_flavour_in_a_container() -> None:
    from testcontainers.postgres import PostgresContainer

    from cryptochart.db.migrate import migrate

    found = re.search(r"image: (timescale/timescaledb:\S+)", (ROOT / "compose.yaml").read_text())
    assert found, "compose.yaml names no TimescaleDB image"
    image = found.group(1)
    with PostgresContainer(image, driver=None) as pg:
        url = pg.get_connection_url()
        with psycopg.connect(url) as conn:
            result = migrate(conn, "7 days", "400 days")
            assert result.flavour == "timescaledb"
            assert migrate(conn, "7 days", "400 days").applied == []
            assert columns(conn, "kline_1s") == KLINE_COLUMNS
            for relation in AGGREGATES:
                assert columns(conn, relation) == {**KLINE_COLUMNS, "seconds": "integer"}
            jobs = conn.execute(
                "SELECT count(*) FROM timescaledb_information.jobs "
                "WHERE proc_name = 'policy_retention'"
            ).fetchone()
            assert jobs == (1 + len(AGGREGATES),)
