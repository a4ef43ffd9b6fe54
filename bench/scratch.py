"""A database and Kafka topics of one benchmark's own, on the shared local services.

Other engineers' tests use the same PostgreSQL and Kafka, so a benchmark never touches their
databases or topics: it makes its own (like ``tests/conftest.py``) and drops them afterwards.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import replace

import psycopg
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from cryptochart.core.database import with_dbname
from cryptochart.core.settings import Settings
from cryptochart.core.topics import ensure_topics
from cryptochart.db.migrate import Flavour, migrate_configured

RUN_TOKEN = secrets.token_hex(3)  # one per `python -m bench`, in every name it creates
SHORT: dict[Flavour, str] = {"timescaledb": "ts", "postgres": "pg"}


def dbname(settings: Settings) -> str:
    return str(conninfo_to_dict(settings.database_url)["dbname"])


@contextmanager
def scratch_settings(
    base: Settings, flavour: Flavour, label: str, **changes: object
) -> Iterator[Settings]:
    """Settings on a fresh database migrated to ``flavour`` and fresh topics, all named
    ``cc_bench_<run>_<label>_<ts|pg>``; dropped on exit, with the consumer groups that used them."""
    name = f"cc_bench_{RUN_TOKEN}_{label}_{SHORT[flavour]}"
    with psycopg.connect(base.database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = with_dbname(base.database_url, name)
    settings = replace(base.on_database(url), db_flavour=flavour, **changes)  # type: ignore[arg-type]
    try:
        with psycopg.connect(url) as conn:
            migrated = migrate_configured(conn, settings, flavour)
            if migrated.flavour != flavour:
                raise RuntimeError(f"{name} was migrated as {migrated.flavour}, not {flavour}")
        ensure_topics(settings)
        yield settings
    finally:
        _drop_topics(settings, name)
        with psycopg.connect(base.database_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _drop_topics(settings: Settings, prefix: str) -> None:
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    topics = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix)]
    for future in admin.delete_topics(topics, operation_timeout=30).values() if topics else []:
        with suppress(KafkaException):
            future.result(30)
    groups = [
        g.group_id
        for g in admin.list_consumer_groups().result(30).valid
        if g.group_id.startswith(prefix)
    ]
    for future in admin.delete_consumer_groups(groups).values() if groups else []:
        with suppress(KafkaException):
            future.result(30)
