"""Fixtures of the fault suite: a database, topics and consumer group of each scenario's own, and a
PostgreSQL cluster and Kafka broker of the suite's own for the scenarios that restart them.

``slow`` scenarios (the long versions) run only when asked for (``make test-faults`` =
``pytest -m slow tests/faults``); their short versions run in ``make test``.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import psycopg
import pytest
from confluent_kafka.admin import AdminClient
from psycopg import sql

from cryptochart.core.settings import Settings
from cryptochart.db.migrate import Flavour
from cryptochart.devservices.kafka import LocalKafka
from cryptochart.devservices.ports import free_port
from cryptochart.devservices.postgres import LocalPostgres, local_url
from tests.conftest import provisioned, with_dbname
from tests.faults.stages import Stages

Scenario = Callable[..., Settings]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "slow" in (config.option.markexpr or ""):
        return
    here = Path(__file__).parent
    skip = pytest.mark.skip(reason="long fault scenario: run with `make test-faults`")
    for item in items:
        if item.get_closest_marker("slow") and here in item.path.parents:
            item.add_marker(skip)


def delete_topics(bootstrap: str, topics: list[str]) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
    for future in admin.delete_topics(topics, operation_timeout=30).values():
        # Already gone, or the broker is down: nothing left to tidy.
        with contextlib.suppress(Exception):
            future.result(30)


@pytest.fixture
def scenario(
    request: pytest.FixtureRequest,
    base_settings: Settings,
    database_factory: Callable[[str], str],
    flavour: Flavour,
) -> Iterator[Scenario]:
    """``scenario(**changes)``: Settings of a fresh migrated database (on the shared cluster
    unless ``database_url`` names another), fresh topics and a consumer group of this test's own.
    The minute job aggregates a whole database, so scenarios never share one."""
    made: list[Settings] = []
    owned: list[str] = []  # databases made here (not the private cluster's)

    def make(**changes: object) -> Settings:
        digest = hashlib.blake2s(request.node.nodeid.encode(), digest_size=3).hexdigest()
        label = f"f{len(made)}_{digest}_{request.node.name[5:22]}".lower()
        label = "".join(c if c.isalnum() else "_" for c in label)
        url = changes.pop("database_url", None)
        if url is None:
            url = database_factory(label)
            owned.append(str(psycopg.conninfo.conninfo_to_dict(url)["dbname"]))
        assert isinstance(url, str)
        name = str(psycopg.conninfo.conninfo_to_dict(url)["dbname"])
        settings = provisioned(base_settings, url, flavour, f"{name}.inserter-1", **changes)
        made.append(settings)
        return settings

    yield make
    for settings in made:
        delete_topics(settings.kafka_bootstrap, [settings.klines_topic, settings.dead_letter_topic])
    # Each TimescaleDB database holds a background worker (its job scheduler) while it exists.
    with psycopg.connect(base_settings.database_url, autocommit=True) as admin:
        for name in owned:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def stages(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stages]:
    """The scenario's processes; killed at the end, their logs printed when the test fails."""
    with Stages(tmp_path) as running:
        yield running
        call = getattr(request.node, "rep_call", None)  # kept by tests/conftest.py
        if call is not None and call.failed:
            running.print_logs()


@dataclass(frozen=True)
class PrivateServices:
    """A PostgreSQL cluster and a Kafka broker nobody else uses, on ports of their own."""

    settings: Settings
    postgres: LocalPostgres
    kafka: LocalKafka

    def database(self, name: str) -> str:
        """A fresh empty database on the private cluster; its URL."""
        with psycopg.connect(self.settings.database_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return with_dbname(self.settings.database_url, name)


@pytest.fixture(scope="session")
def private_services(base_settings: Settings, services: list[str]) -> Iterator[PrivateServices]:
    """Started once per session: restarting them disturbs no one else's tests."""
    # The postgres user must reach the cluster's folder, so not under pytest's private tmp.
    data_dir = Path(tempfile.mkdtemp(prefix="cryptochart-faults-"))
    data_dir.chmod(0o755)
    pg_port, kafka_port, controller_port = free_port(), free_port(), free_port()
    settings = replace(
        base_settings,
        data_dir=data_dir,
        local_pg_port=pg_port,
        local_kafka_port=kafka_port,
        local_kafka_controller_port=controller_port,
        database_url=local_url(data_dir, pg_port, "faults"),
        kafka_bootstrap=f"127.0.0.1:{kafka_port}",
    )
    postgres, kafka = LocalPostgres(settings), LocalKafka(settings)
    kafka.libs.mkdir(parents=True)
    for jar in LocalKafka(base_settings).libs.glob("*.jar"):  # the shared broker's jars
        (kafka.libs / jar.name).symlink_to(jar)
    try:
        postgres.up()
        kafka.up()
        yield PrivateServices(settings, postgres, kafka)
    finally:
        kafka.down()
        postgres.down()
        shutil.rmtree(data_dir, ignore_errors=True)
