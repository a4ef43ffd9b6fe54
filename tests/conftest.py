"""Fixtures: the real local services (started through `cryptochart services up`'s own code),
and a fresh migrated database and fresh Kafka topics for each test session and schema flavour.

Every test that uses a database runs once per schema flavour (``[timescaledb]``, ``[postgres]``);
``CRYPTOCHART_TEST_FLAVOURS`` narrows that (for instance to ``postgres`` on a server without
TimescaleDB, where the TimescaleDB runs are skipped with that reason).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import replace

import psycopg
import pytest
from psycopg import sql

from cryptochart.core.database import Conn
from cryptochart.core.database import with_dbname as with_dbname
from cryptochart.core.settings import Settings
from cryptochart.core.topics import ensure_topics
from cryptochart.db.migrate import FLAVOURS, Flavour, detect_flavour, migrate_configured
from cryptochart.devservices import local
from tests.policy_jobs import set_jobs


def flavours_under_test() -> list[Flavour]:
    wanted = os.environ.get("CRYPTOCHART_TEST_FLAVOURS", ",".join(FLAVOURS)).split(",")
    return [f for f in FLAVOURS if f in wanted]


def pytest_report_header(config: pytest.Config) -> list[str]:
    """The server and TimescaleDB versions the tests run on, in the session's first lines."""
    try:
        with psycopg.connect(Settings.from_env().database_url, connect_timeout=3) as conn:
            server = conn.execute("SHOW server_version").fetchone()
            row = conn.execute(
                "SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb'"
            ).fetchone()
    except psycopg.OperationalError:
        return ["postgresql: not running yet"]
    timescaledb = f"TimescaleDB {row[0]}" if row else "no TimescaleDB"
    return [
        f"postgresql: {server[0] if server else '?'} with {timescaledb}; "
        f"schema flavours: {', '.join(flavours_under_test())}"
    ]


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    return Settings.from_env()


@pytest.fixture(scope="session")
def services(base_settings: Settings) -> list[str]:
    """PostgreSQL and Kafka up (idempotent: reuses running ones, starts stopped ones)."""
    return local.up(base_settings)


@pytest.fixture(scope="session")
def database_factory(
    services: list[str], base_settings: Settings
) -> Iterator[Callable[[str], str]]:
    """Creates empty databases named after the test session; drops them at the end."""
    created: list[str] = []
    admin_url = base_settings.database_url
    token = secrets.token_hex(4)

    def create(label: str) -> str:
        name = f"cc_test_{token}_{label}"
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        created.append(name)
        return with_dbname(admin_url, name)

    yield create
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for name in created:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def migrated(settings: Settings, url: str, flavour: Flavour | None = None) -> None:
    with psycopg.connect(url) as conn:
        migrate_configured(conn, settings, flavour)


def provisioned(
    base: Settings, url: str, flavour: Flavour, instance_id: str = "", **changes: object
) -> Settings:
    """``base`` on the empty database at ``url``, migrated to ``flavour``, with Kafka topics
    and a consumer group of its own."""
    ours = replace(base.on_database(url, instance_id), db_flavour=flavour, **changes)  # type: ignore[arg-type]
    migrated(ours, url)
    ensure_topics(ours)
    return ours


@pytest.fixture(scope="session", params=flavours_under_test())
def flavour(
    request: pytest.FixtureRequest, services: list[str], base_settings: Settings
) -> Flavour:
    """The schema flavour of this run of a test (every database test runs on each)."""
    wanted: Flavour = request.param
    if wanted == "timescaledb":
        with psycopg.connect(base_settings.database_url) as conn:
            if detect_flavour(conn) != "timescaledb":
                pytest.skip("the server does not offer TimescaleDB (run scripts/timescaledb.sh)")
    return wanted


def skip_unless(flavour: Flavour, wanted: Flavour) -> None:
    """Skip a test of one flavour's own mechanism when running on the other."""
    if flavour != wanted:
        pytest.skip(f"{wanted} flavour only")


@pytest.fixture(scope="session")
def settings(
    base_settings: Settings, database_factory: Callable[[str], str], flavour: Flavour
) -> Settings:
    """Settings of this test session and flavour: its own migrated database and Kafka topics.
    Its TimescaleDB retention and columnstore jobs are not scheduled: many tests write fixed
    times of 2024 (or 1970), which a job firing on the scheduler's clock would drop or compress
    mid-test (tests of those policies run the jobs themselves, or on databases of their own)."""
    ours = provisioned(base_settings, database_factory(f"main_{flavour}"), flavour)
    if flavour == "timescaledb":
        with psycopg.connect(ours.database_url, autocommit=True) as conn:
            set_jobs(conn, "scheduled => false")
    return ours


@pytest.fixture
def db(settings: Settings) -> Iterator[Conn]:
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="session")
def archive_settings(
    base_settings: Settings, database_factory: Callable[[str], str], flavour: Flavour
) -> Settings:
    """A database of this flavour that keeps everything for a century: for Binance's 2024 files,
    which the default retention (and TimescaleDB's retention jobs) would drop at any moment."""
    return provisioned(
        base_settings,
        database_factory(f"archive_{flavour}"),
        flavour,
        retention_1s="100 years",
        retention_aggregates="100 years",
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    """Keep each phase's report on the test item (`rep_setup`, `rep_call`): fixtures that show
    logs or screenshots of failed tests read it in their teardown."""
    report = yield
    setattr(item, f"rep_{call.when}", report)
    return report
