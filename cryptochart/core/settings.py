"""Every setting of the product, read once from ``CRYPTOCHART_*`` environment variables.

Each field's default is what a fresh clone uses with ``make run``; ``.env.example`` documents them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args
from urllib.parse import quote

from cryptochart.core.symbols import parse_symbols

T = TypeVar("T")
SourceKind = Literal["auto", "binance", "sim", "replay"]
FlavourChoice = Literal["auto", "timescaledb", "postgres"]

ROOT = Path(__file__).resolve().parents[2]  # the repository (this is cryptochart/core/)

DEFAULT_SYMBOLS = (
    "BTCUSDT,ETHUSDT,BNBUSDT,SOLUSDT,XRPUSDT,DOGEUSDT,ADAUSDT,TRXUSDT,AVAXUSDT,LINKUSDT,"
    "DOTUSDT,LTCUSDT"
)


class SettingsError(ValueError):
    """A setting's value cannot be used; the message names the variable."""


@dataclass(frozen=True, slots=True)
class Settings:
    # Storage and messaging.
    # The local cluster's owner; its password is in the cluster's libpq password file.
    database_url: str = "postgresql://cryptochart@127.0.0.1:55432/cryptochart?passfile=" + quote(
        str(ROOT / ".data" / "pg" / "pgpass")
    )
    api_database_url: str = ""  # read-only role for the API; empty: database_url as cryptochart_api
    # Each stage connects as its own role; empty: database_url with that role and no password.
    inserter_database_url: str = ""  # writes kline_1s and the checkpoints (cryptochart_app)
    minute_job_database_url: str = ""  # refreshes the aggregates (cryptochart_minute_job)
    kafka_bootstrap: str = "127.0.0.1:59092"
    klines_topic: str = "cryptochart.klines.1s"
    dead_letter_topic: str = "cryptochart.klines.dead-letter"
    instruments_topic: str = "cryptochart.instruments"  # compacted: each symbol's tick/lot size
    topic_partitions: int = 6
    # Which klines flow.
    source: SourceKind = "auto"
    symbols: tuple[str, ...] = field(default_factory=lambda: parse_symbols(DEFAULT_SYMBOLS))
    binance_ws_url: str = "wss://stream.binance.com:9443"
    binance_rest_url: str = "https://api.binance.com"
    sim_seed: int = 1
    replay_path: str = ""
    replay_speed: float = 1.0
    # Schema flavour of a new database: TimescaleDB where the server offers it (auto), or forced.
    db_flavour: FlavourChoice = "auto"
    # Storage policy.
    retention_1s: str = "7 days"
    retention_aggregates: str = "400 days"
    # TimescaleDB only: chunks older than these are compressed (columnstore) by its job scheduler.
    compress_after: str = "1 day"
    compress_aggregates_after: str = "7 days"
    use_partman: bool = True  # plain PostgreSQL: pg_partman keeps the partitions, where installed
    # Stages.
    inserter_group: str = "cryptochart-inserter"
    # Static group membership: a restarted inserter with the same id takes its partitions back
    # at once instead of after the session timeout. Give each inserter its own; empty: dynamic.
    inserter_instance_id: str = ""
    # How long a member may be silent before its partitions go to the others; a static member
    # restarted within it resumes them without any rebalance.
    inserter_session_timeout_seconds: float = 10.0
    insert_batch_rows: int = 20000
    # Database connections writing each batch side by side, a share of the Kafka partitions each
    # (a symbol's klines stay with one, in order).
    inserter_writers: int = 2
    insert_batch_seconds: float = 0.2
    aggregate_grace_seconds: float = 3.0
    aggregate_poll_seconds: float = 0.1
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # Local services (used only when the URLs above point at them).
    data_dir: Path = ROOT / ".data"
    local_pg_port: int = 55432
    # A streaming replica of the local PostgreSQL (hot standby, for the API's reads), on its port.
    local_pg_replica: bool = False
    local_pg_replica_port: int = 55433
    local_kafka_port: int = 59092
    local_kafka_controller_port: int = 59093
    # Nodes of the local Kafka (KRaft) cluster; node n listens on the two ports above + 2(n - 1).
    local_kafka_brokers: int = 1
    kafka_heap: str = "384m"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``environ`` (default: ``os.environ``); a bad value raises SettingsError."""
        return load_env(cls, "CRYPTOCHART_", environ)

    def as_env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment in which a child ``cryptochart`` process reads exactly these settings:
        ``base`` (default ``os.environ``) with every setting's variable replaced."""
        env = dict(os.environ if base is None else base)
        for f in fields(self):
            name = f"CRYPTOCHART_{f.name.upper()}"
            value = getattr(self, f.name)
            text = ",".join(value) if isinstance(value, tuple) else str(value)
            env.pop(name, None)
            if text:  # empty means the default, as in from_env
                env[name] = text
        return env

    def on_database(self, url: str, instance_id: str = "") -> Settings:
        """These settings moved to the database at ``url``, with Kafka topics and a consumer group
        named after it: a pipeline of its own beside others on the same servers. Every URL
        derived from the main one (empty) follows it."""
        from psycopg.conninfo import conninfo_to_dict

        name = conninfo_to_dict(url)["dbname"]
        return replace(
            self,
            database_url=url,
            api_database_url="",
            inserter_database_url="",
            minute_job_database_url="",
            klines_topic=f"{name}.klines",
            dead_letter_topic=f"{name}.dead-letter",
            instruments_topic=f"{name}.instruments",
            inserter_group=f"{name}.inserter",
            inserter_instance_id=instance_id,
        )

    @property
    def api_dsn(self) -> str:
        """Connection string of the API's read-only role."""
        return self.api_database_url or self._as_role("cryptochart_api")

    @property
    def inserter_dsn(self) -> str:
        """Connection string of the inserter's role: writes kline_1s and the checkpoints."""
        return self.inserter_database_url or self._as_role("cryptochart_app")

    @property
    def minute_job_dsn(self) -> str:
        """Connection string of the minute job's role: refreshes the aggregates, marks the
        checkpoints."""
        return self.minute_job_database_url or self._as_role("cryptochart_minute_job")

    def _as_role(self, role: str) -> str:
        """``database_url`` as ``role``, without the owner's password (a password file named in
        the URL still applies: libpq looks the role up in it)."""
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        params = conninfo_to_dict(self.database_url)
        params["user"] = role
        params.pop("password", None)
        return make_conninfo(**{k: str(v) for k, v in params.items() if v is not None})


def load_env(cls: type[T], prefix: str, environ: Mapping[str, str] | None = None) -> T:
    """An instance of the dataclass ``cls`` whose fields are overridden by ``<prefix><FIELD>``
    variables, parsed by the field's type; a bad value raises SettingsError naming it."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        name = f"{prefix}{f.name.upper()}"
        raw = env.get(name)
        if raw is None or raw == "":
            continue
        try:
            values[f.name] = _PARSERS.get(f.name, _parser_for(f.type))(raw)
        except ValueError as exc:
            raise SettingsError(f"{name}={raw!r}: {exc}") from None
    return cls(**values)


def _one_of(choices: Any) -> Callable[[str], Any]:
    allowed: tuple[str, ...] = get_args(choices)

    def parse(raw: str) -> str:
        if raw not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return raw

    return parse


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError("must be a positive integer")
    return value


def _positive_float(raw: str) -> float:
    value = float(raw)
    if value <= 0:
        raise ValueError("must be a positive number")
    return value


def _boolean(raw: str) -> bool:
    if raw.lower() in ("1", "true", "on", "yes"):
        return True
    if raw.lower() in ("0", "false", "off", "no"):
        return False
    raise ValueError("must be on or off")


def _path(raw: str) -> Path:
    path = Path(raw)
    return path if path.is_absolute() else ROOT / path


def _words(raw: str) -> tuple[str, ...]:
    return tuple(word.strip() for word in raw.split(",") if word.strip())


def _parser_for(annotation: object) -> Callable[[str], Any]:
    by_type: dict[str, Callable[[str], Any]] = {
        "int": _positive_int,
        "float": _positive_float,
        "bool": _boolean,
        "Path": _path,
        "tuple[str, ...]": _words,
    }
    return by_type.get(str(annotation), str)


_PARSERS: dict[str, Callable[[str], Any]] = {
    "source": _one_of(SourceKind),
    "db_flavour": _one_of(FlavourChoice),
    "symbols": parse_symbols,
    "api_port": int,
}
