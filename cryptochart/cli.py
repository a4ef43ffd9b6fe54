"""The ``cryptochart`` command: one entry point, one subcommand per stage."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Callable, Sequence

import psycopg
from confluent_kafka import KafkaException

from cryptochart.core.settings import Settings, SettingsError
from cryptochart.db.migrate import SchemaError
from cryptochart.devservices.process import ServiceError
from cryptochart.ingest.cli import add_source_options

Command = Callable[[argparse.Namespace, Settings], int]
# Commands that run until stopped: a SIGTERM before they are up is a clean stop, as after.
STAGES = frozenset({"produce", "insert", "minute-job", "aggregate", "serve", "run"})


class Terminated(Exception):
    """SIGTERM arrived before the command put its own handler in place."""


def _terminated(signum: int, frame: object) -> None:
    raise Terminated


def _services(args: argparse.Namespace, settings: Settings) -> int:
    from cryptochart.devservices import local

    if args.action == "up":  # the one place a cluster made with trust gets passwords
        lines = local.up(settings, convert_auth=True)
    else:
        lines = {"down": local.down, "status": local.status}[args.action](settings)
    for line in lines:
        print(line)
    return 0


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    from cryptochart.core.database import connect
    from cryptochart.core.topics import ensure_topics
    from cryptochart.db.migrate import migrate_configured

    with connect(settings.database_url) as conn:
        result = migrate_configured(conn, settings, args.flavour)
    applied = ", ".join(result.applied) or "nothing new"
    print(f"schema ({result.flavour}): applied {applied}")
    if not args.skip_topics:
        created = ensure_topics(settings)
        print(f"kafka topics: created {', '.join(created) or 'nothing new'}")
    return 0


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from cryptochart.supervisor import run

    source_args = [
        f"--{name}={value}" for name in ("source", "symbols") if (value := getattr(args, name))
    ]
    return run(settings, source_args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cryptochart",
        description="Real-time crypto candlesticks: exchange 1s klines → Kafka → SQL → chart. "
        "Settings come from CRYPTOCHART_* environment variables (see .env.example).",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug lines")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    services = sub.add_parser(
        "services",
        help="start/stop the local PostgreSQL and Kafka",
        description="Manage the project's own PostgreSQL and Kafka on loopback, in .data/. "
        "Services whose URL points elsewhere are left alone.",
    )
    services.add_argument("action", choices=["up", "down", "status"])
    services.set_defaults(run=_services)

    migrate = sub.add_parser(
        "migrate",
        help="create or update the schema and the Kafka topics",
        description="Apply db/migrations (TimescaleDB where the extension exists, else plain "
        "PostgreSQL), set retention and compression, and create the Kafka topics. Safe to run "
        "again.",
    )
    migrate.add_argument(
        "--flavour",
        choices=["timescaledb", "postgres"],
        default=None,
        help="schema flavour of a new database (default: CRYPTOCHART_DB_FLAVOUR, auto)",
    )
    migrate.add_argument("--skip-topics", action="store_true", help="do not touch Kafka")
    migrate.set_defaults(run=_migrate)

    for register in _stage_commands():
        register(sub)

    run = sub.add_parser(
        "run",
        help="the whole product: services, migrate, producer, inserter, minute job, API",
        description="Start everything in one process tree (restarting any part that dies) and "
        "print the chart's URL. Ctrl-C stops it all.",
    )
    add_source_options(run)
    run.set_defaults(run=_run)
    return parser


def _stage_commands() -> list[
    Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]
]:
    """The stages' own subcommands: produce, insert, aggregate, backfill and serve."""
    from cryptochart.api.cli import register as api_commands
    from cryptochart.ingest.cli import register as ingest_commands

    return [ingest_commands, api_commands]


TIME_OPTIONS = ("--from", "--to")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line, where ``--from -1h`` means ``--from=-1h`` (argparse alone would take
    the relative time for an option)."""
    words = list(sys.argv[1:] if argv is None else argv)
    joined: list[str] = []
    for word in words:
        if joined and joined[-1] in TIME_OPTIONS and word[:1] == "-" and word[1:2].isdigit():
            joined[-1] = f"{joined[-1]}={word}"
        else:
            joined.append(word)
    return build_parser().parse_args(joined)


def main(argv: Sequence[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _terminated)
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = Settings.from_env()
        command: Command = args.run
        return command(args, settings)
    except KeyboardInterrupt:
        return 130
    except Terminated:
        return 0 if args.command in STAGES else 128 + signal.SIGTERM
    except (
        SettingsError,
        ServiceError,
        psycopg.Error,
        KafkaException,
        ValueError,
        SchemaError,
    ) as exc:
        message = " ".join(str(exc).split()) if not isinstance(exc, ServiceError) else str(exc)
        print(f"cryptochart {args.command}: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
