"""Apply ``db/migrations/*.sql`` in order, each in its own transaction, once.

A file named ``NNNN_name.sql`` applies to both schema flavours; ``NNNN_name.timescaledb.sql`` and
``NNNN_name.postgres.sql`` only to theirs. The flavour is TimescaleDB when the server offers the
extension, else plain PostgreSQL; it is recorded with the first migration and kept from then on.
A file for both flavours that differs in a detail reads ``current_setting('cryptochart.flavour')``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import psycopg

from cryptochart.core.settings import Settings
from cryptochart.db import policies

Flavour = Literal["timescaledb", "postgres"]
FLAVOURS: tuple[Flavour, ...] = ("timescaledb", "postgres")
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
LOCK_ID = 0x6372_7970  # pg_advisory_lock key: one migrate at a time per database

log = logging.getLogger(__name__)


class SchemaError(RuntimeError):
    """The schema cannot be created or used as asked; the message says what to do."""


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    flavour: Flavour | None
    path: Path

    @classmethod
    def from_path(cls, path: Path) -> Migration:
        stem, _, flavour = path.name.removesuffix(".sql").partition(".")
        version, _, name = stem.partition("_")
        if not version.isdigit() or (flavour and flavour not in FLAVOURS):
            raise ValueError(f"migration file name {path.name!r} is not NNNN_name[.flavour].sql")
        return cls(version, name, flavour or None, path)  # type: ignore[arg-type,unused-ignore]


def discover(flavour: Flavour, folder: Path = MIGRATIONS) -> list[Migration]:
    """The migrations of one flavour, in version order."""
    found = [Migration.from_path(p) for p in sorted(folder.glob("*.sql"))]
    return [m for m in found if m.flavour in (None, flavour)]


def detect_flavour(conn: psycopg.Connection[tuple[object, ...]]) -> Flavour:
    row = conn.execute(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone()
    return "timescaledb" if row else "postgres"


def requested_flavour(
    conn: psycopg.Connection[tuple[object, ...]], requested: str | None
) -> Flavour:
    """The flavour for a new database: ``requested`` (auto or None: detect), checked."""
    if requested in (None, "auto"):
        return detect_flavour(conn)
    flavour = _as_flavour(requested)
    if flavour == "timescaledb" and detect_flavour(conn) != "timescaledb":
        raise SchemaError(
            "CRYPTOCHART_DB_FLAVOUR=timescaledb, but the server does not offer the timescaledb "
            "extension: run scripts/timescaledb.sh (or install timescaledb-2-postgresql-15), "
            "or choose CRYPTOCHART_DB_FLAVOUR=postgres"
        )
    return flavour


@dataclass(frozen=True)
class MigrationResult:
    flavour: Flavour
    applied: list[str]


def migrate(
    conn: psycopg.Connection[tuple[object, ...]],
    retention_1s: str,
    retention_aggregates: str,
    flavour: str | None = None,
    use_partman: bool = True,
    compress_after: str | None = None,
    compress_aggregates_after: str | None = None,
) -> MigrationResult:
    """Apply what is missing, then (re)apply the retention and compression policies (None: the
    settings' defaults). Safe to call again."""
    conn.autocommit = True
    conn.execute(
        "SELECT set_config('cryptochart.use_partman', %s, false)", ("on" if use_partman else "off",)
    )
    conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_ID,))
    try:
        conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version text PRIMARY KEY, name text NOT NULL, flavour text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        rows = conn.execute("SELECT version, flavour FROM schema_migrations").fetchall()
        done = {str(version) for version, _ in rows}
        recorded = {str(f) for _, f in rows}
        chosen = _as_flavour(recorded.pop()) if recorded else requested_flavour(conn, flavour)
        conn.execute("SELECT set_config('cryptochart.flavour', %s, false)", (chosen,))
        applied = []
        for migration in discover(chosen):
            if migration.version in done:
                continue
            log.info("applying migration %s_%s (%s)", migration.version, migration.name, chosen)
            with conn.transaction():
                conn.execute(migration.path.read_text().encode())
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, flavour) VALUES (%s, %s, %s)",
                    (migration.version, migration.name, chosen),
                )
            applied.append(f"{migration.version}_{migration.name}")
        policies.apply_retention(conn, chosen, retention_1s, retention_aggregates)
        defaults = Settings()
        policies.apply_compression(
            conn,
            chosen,
            compress_after or defaults.compress_after,
            compress_aggregates_after or defaults.compress_aggregates_after,
        )
        return MigrationResult(chosen, applied)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_ID,))


def migrate_configured(
    conn: psycopg.Connection[tuple[object, ...]], settings: Settings, flavour: str | None = None
) -> MigrationResult:
    """:func:`migrate` with ``settings``' retention, compression and partition choices, and the
    plain flavour's partitions made for today; ``flavour`` overrides the setting."""
    from cryptochart.db.partitions import maintain

    result = migrate(
        conn,
        settings.retention_1s,
        settings.retention_aggregates,
        flavour or settings.db_flavour,
        use_partman=settings.use_partman,
        compress_after=settings.compress_after,
        compress_aggregates_after=settings.compress_aggregates_after,
    )
    if result.flavour == "postgres":
        maintain(conn)
    return result


def schema_flavour(conn: psycopg.Connection[tuple[object, ...]]) -> Flavour:
    """The flavour a migrated database was built with."""
    row = conn.execute("SELECT flavour FROM schema_migrations LIMIT 1").fetchone()
    if row is None:
        raise SchemaError("the database is not migrated yet: run `cryptochart migrate`")
    return _as_flavour(row[0])


def _as_flavour(value: object) -> Flavour:
    if value not in FLAVOURS:
        raise SchemaError(f"unknown schema flavour {value!r} in schema_migrations")
    return value
