"""`cryptochart services up|down|status`: both local services, skipping external ones."""

from __future__ import annotations

from cryptochart.core.settings import Settings
from cryptochart.devservices.kafka import LocalKafka
from cryptochart.devservices.postgres import LocalPostgres


def _services(settings: Settings) -> tuple[LocalPostgres, LocalKafka]:
    return LocalPostgres(settings), LocalKafka(settings)


def up(settings: Settings, convert_auth: bool = False) -> list[str]:
    """Start what is local and not running (idempotent); return one status line per service.
    ``convert_auth``: a PostgreSQL cluster made with trust authentication gets passwords
    (`cryptochart services up` and `run` ask for it; a test session's set-up does not)."""
    postgres, kafka = _services(settings)
    if postgres.managed:
        postgres.up(convert_auth)
    if kafka.managed:
        kafka.up()
    return status(settings)


def down(settings: Settings) -> list[str]:
    for service in _services(settings):
        if service.managed:
            service.down()
    return status(settings)


def status(settings: Settings) -> list[str]:
    return [service.status() for service in _services(settings)]
