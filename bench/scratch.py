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
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from cryptochart.core.settings import Settings
from cryptochart.core.topics import ensure_topics
from cryptochart.db.migrate import Flavour, migrate
from cryptochart.db.partitions import maintain

RUN_TOKEN = secrets.token_hex(3)  # one per `python -m bench`, in every name it creates
SHORT: dict[Flavour, str] = {"timescaledb": "ts", "postgres": "pg"}


def dbname(settings: Settings) -> str:
    return str(conninfo_to_dict(settings.database_url)["dbname"])


def with_dbname(url: str, dbname: str, **overrides: str) -> str:
    params = {**conninfo_to_dict(url), "dbname": dbname, **overrides}
    return make_conninfo(**{k: str(v) for k, v in params.items() if v is not None})


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
    settings = replace(
        base,
        database_url=url,
        api_database_url=with_dbname(url, name, user="cryptochart_api"),
        klines_topic=f"{name}.klines",
        dead_letter_topic=f"{name}.dead-letter",
        inserter_group=f"{name}.inserter",
        inserter_instance_id="",
        db_flavour=flavour,
        **changes,  # type: ignore[arg-type]
    )
    try:
        with psycopg.connect(url) as conn:
            migrated = migrate(
                conn,
                settings.retention_1s,
                settings.retention_aggregates,
                flavour,
                use_partman=settings.use_partman,
                compress_after=settings.compress_after,
                compress_aggregates_after=settings.compress_aggregates_after,
            )
            if migrated.flavour != flavour:
                raise RuntimeError(f"{name} was migrated as {migrated.flavour}, not {flavour}")
            if flavour == "postgres":
                maintain(conn)
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
