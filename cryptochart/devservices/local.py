"""`cryptochart services up|down|status`: the local services, skipping external ones."""

from __future__ import annotations

from cryptochart.core.settings import Settings
from cryptochart.devservices.kafka import LocalKafka
from cryptochart.devservices.postgres import LocalPostgres
from cryptochart.devservices.replica import LocalReplica

Service = LocalPostgres | LocalReplica | LocalKafka


def _services(settings: Settings) -> list[Service]:
    """In starting order: the replica is copied from the running primary."""
    services: list[Service] = [LocalPostgres(settings), LocalKafka(settings)]
    if settings.local_pg_replica:
        services.insert(1, LocalReplica(settings))
    return services


def up(settings: Settings, convert_auth: bool = False) -> list[str]:
    """Start what is local and not running (idempotent); return one status line per service.
    ``convert_auth``: a PostgreSQL cluster made with trust authentication gets passwords
    (`cryptochart services up` and `run` ask for it; a test session's set-up does not)."""
    for service in _services(settings):
        if not service.managed:
            continue
        if isinstance(service, LocalPostgres):
            service.up(convert_auth)
        else:
            service.up()
    return status(settings)


def down(settings: Settings) -> list[str]:
    for service in reversed(_services(settings)):
        if service.managed:
            service.down()
    return status(settings)


def status(settings: Settings) -> list[str]:
    return [service.status() for service in _services(settings)]
