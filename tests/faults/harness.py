"""The fault suite's tools: the pipeline's stages as killable subprocesses, the klines a scenario
produces, and exact comparisons of what the database holds with them."""

from __future__ import annotations

import ast
import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import fields
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Self

import psycopg
from confluent_kafka import Consumer, KafkaError

from cryptochart.kline import Kline, decode
from cryptochart.settings import ROOT, Settings
from ingest.sources.simulated import SimulatedSource

MINUTE_MS = 60_000
SECOND_MS = 1_000

# (open_ms, close_ms, open, high, low, close, volume, quote_volume, trades, taker base, taker
# quote): one kline_1s row; kline_1m rows carry ``seconds`` after it.
Row = tuple[object, ...]
Key = tuple[str, int]  # (symbol, open_ms)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def settings_env(settings: Settings, **extra: str) -> dict[str, str]:
    """Environment in which a `cryptochart` subprocess uses exactly ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRYPTOCHART_")}
    for f in fields(Settings):
        value = getattr(settings, f.name)
        text = ",".join(value) if isinstance(value, tuple) else str(value)
        if text:
            env[f"CRYPTOCHART_{f.name.upper()}"] = text
    env.update(extra)
    return env


def poll_until(
    check: Callable[[], object], timeout: float, what: str, interval: float = 0.1
) -> float:
    """Poll ``check`` until it returns something true; return the seconds it took.

    ``check`` may return a string to explain why the condition does not hold yet: the last
    explanation ends the failure message on timeout.
    """
    started = time.monotonic()
    deadline = started + timeout
    while True:
        result = check()
        if result is True or (result and not isinstance(result, str)):
            return time.monotonic() - started
        if time.monotonic() > deadline:
            why = f": {result}" if isinstance(result, str) and result else ""
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}{why}")
        time.sleep(interval)


# --- Stages as subprocesses ------------------------------------------------------------------


class Stage:
    """One pipeline process (``cryptochart <args>`` or ``python -m <module>``) that a test may
    kill -9 and start again; its output of every run is appended to one log file."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        log_dir: Path,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @classmethod
    def cli(cls, name: str, settings: Settings, log_dir: Path, *args: str, **env: str) -> Stage:
        argv = [sys.executable, "-m", "cryptochart.cli", *args]
        return cls(name, argv, settings_env(settings, **env), log_dir)

    def start(self) -> Self:
        assert not self.alive, f"{self.name} is already running"
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"--- start {self.starts} of {self.name}: {' '.join(self.argv)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill9(self) -> None:
        """SIGKILL: no clean-up of any kind, as when the machine loses the process."""
        assert self.proc is not None and self.alive, f"{self.name} is not running: {self.tail()}"
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def restart(self) -> Self:
        self.kill9()
        return self.start()

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait; the exit code (a clean stop is 0)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError(f"{self.name} ignored SIGTERM for {timeout:.0f}s") from None

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} still running after {timeout:.0f}s") from None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def last_run_log(self) -> str:
        return self.log().rsplit("--- start ", 1)[-1]

    def tail(self, lines: int = 25) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def counts(self) -> dict[str, int]:
        """The counters a stopped producer logs on its way out (``producer stopped: {...}``)."""
        marker = "producer stopped: "
        line = next(
            (ln for ln in reversed(self.log().splitlines()) if marker in ln),
            None,
        )
        assert line is not None, f"{self.name} logged no counters:\n{self.tail()}"
        text = line.split(marker, 1)[1].rsplit(";", 1)[0]
        counts = ast.literal_eval(text)
        assert isinstance(counts, dict)
        return {str(k): int(v) for k, v in counts.items()}


class Stages:
    """The stages of one scenario: stopped (or killed) on exit, logs printed for failures."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.all: list[Stage] = []

    def add(self, stage: Stage) -> Stage:
        self.all.append(stage)
        return stage

    def cli(self, name: str, settings: Settings, *args: str, **env: str) -> Stage:
        return self.add(Stage.cli(name, settings, self.log_dir, *args, **env)).start()

    def module(self, name: str, settings: Settings, module: str, *args: str) -> Stage:
        argv = [sys.executable, "-m", module, *args]
        return self.add(Stage(name, argv, settings_env(settings), self.log_dir)).start()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for stage in self.all:
            if stage.alive:
                assert stage.proc is not None
                stage.proc.kill()
                stage.proc.wait(10)
        if exc is not None:
            for stage in self.all:
                print(f"==== {stage.name} ({stage.log_path}) ====\n{stage.tail(40)}")


# --- What a scenario produces -----------------------------------------------------------------


def sim_klines(symbols: Sequence[str], seed: int, start_ms: int, count: int) -> list[Kline]:
    """The closed klines SimulatedSource yields for these arguments, flat out."""

    async def collect() -> list[Kline]:
        source = SimulatedSource(symbols, seed, speed=None, start_ms=start_ms, count=count)
        return [k async for k in source.stream() if isinstance(k, Kline)]

    return asyncio.run(collect())


def minute_start(ms: int) -> int:
    return ms - ms % MINUTE_MS


def past_start(count: int, now_ms: int | None = None) -> int:
    """A whole minute far enough back that ``count`` seconds from it end before now."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    return minute_start(now - count * SECOND_MS - MINUTE_MS)


def as_row(k: Kline) -> Row:
    return (
        k.open_time,
        k.close_time,
        k.open,
        k.high,
        k.low,
        k.close,
        k.volume,
        k.quote_volume,
        k.trades,
        k.taker_buy_base_volume,
        k.taker_buy_quote_volume,
    )


def by_key(klines: Iterable[Kline]) -> dict[Key, Row]:
    return {(k.symbol, k.open_time): as_row(k) for k in klines}


LEVELS = {"1m": MINUTE_MS, "5m": 5 * MINUTE_MS, "15m": 15 * MINUTE_MS, "1h": 60 * MINUTE_MS}
LEVELS["1d"] = 24 * LEVELS["1h"]


def candles(klines: Iterable[Kline], bucket_ms: int = MINUTE_MS) -> dict[Key, Row]:
    """An aggregate level computed in Python from 1s klines: first open, max high, min low, last
    close, last close_time, the rest summed; ``seconds`` = the 1s klines behind the candle.
    Buckets are aligned to the Unix epoch. Decimal-exact."""
    groups: dict[Key, list[Kline]] = defaultdict(list)
    for k in klines:
        groups[(k.symbol, k.open_time - k.open_time % bucket_ms)].append(k)
    out: dict[Key, Row] = {}
    for (symbol, bucket), ks in groups.items():
        ks.sort(key=lambda k: k.open_time)
        out[(symbol, bucket)] = (
            bucket,
            ks[-1].close_time,
            ks[0].open,
            max(k.high for k in ks),
            min(k.low for k in ks),
            ks[-1].close,
            sum((k.volume for k in ks), Decimal(0)),
            sum((k.quote_volume for k in ks), Decimal(0)),
            sum(k.trades for k in ks),
            sum((k.taker_buy_base_volume for k in ks), Decimal(0)),
            sum((k.taker_buy_quote_volume for k in ks), Decimal(0)),
            len(ks),
        )
    return out


# --- What the database holds ------------------------------------------------------------------

_ROW_SQL = """SELECT symbol, (extract(epoch FROM open_time) * 1000)::bigint,
                     (extract(epoch FROM close_time) * 1000)::bigint,
                     open, high, low, close, volume, quote_volume, trades,
                     taker_buy_base_volume, taker_buy_quote_volume{extra}
              FROM {relation} WHERE symbol = ANY(%s)"""


def stored(url: str, relation: str, symbols: Iterable[str]) -> dict[Key, Row]:
    """Rows of ``relation`` for ``symbols`` keyed by (symbol, open_ms); aggregates end with
    ``seconds``. A duplicate key would raise (the primary key should make it impossible)."""
    extra = "" if relation == "kline_1s" else ", seconds"
    query = _ROW_SQL.format(extra=extra, relation=relation)
    with psycopg.connect(url, connect_timeout=5) as conn:
        rows = conn.execute(query, (list(symbols),)).fetchall()
    out: dict[Key, Row] = {}
    for symbol, *rest in rows:
        key = (str(symbol), int(str(rest[0])))
        assert key not in out, f"{relation} holds {key} twice"
        out[key] = tuple(rest)
    return out


def count_rows(url: str, relation: str, symbols: Iterable[str]) -> int:
    with psycopg.connect(url, connect_timeout=5) as conn:
        row = conn.execute(
            f"SELECT count(*) FROM {relation} WHERE symbol = ANY(%s)", (list(symbols),)
        ).fetchone()
    return int(str(row[0])) if row else 0


def difference(expected: Mapping[Key, Row], actual: Mapping[Key, Row]) -> str:
    """Empty when equal, else a one-line account of what differs."""
    missing = sorted(expected.keys() - actual.keys())
    extra = sorted(actual.keys() - expected.keys())
    changed = sorted(k for k in expected.keys() & actual.keys() if expected[k] != actual[k])
    if not (missing or extra or changed):
        return ""
    parts = [f"{len(expected)} expected, {len(actual)} stored"]
    for label, keys in (("missing", missing), ("unexpected", extra), ("different", changed)):
        if keys:
            parts.append(f"{len(keys)} {label} (first {keys[0]})")
    if changed:
        k = changed[0]
        parts.append(f"expected {expected[k]} got {actual[k]}")
    return "; ".join(parts)


def matches(url: str, relation: str, expected: Mapping[Key, Row]) -> Callable[[], str | bool]:
    """A poll check: ``relation`` holds exactly ``expected`` for the symbols in it."""
    symbols = {s for s, _ in expected}

    def check() -> str | bool:
        diff = difference(expected, stored(url, relation, symbols))
        return diff or True

    return check


def pending_checkpoints(url: str, symbols: Iterable[str]) -> int:
    with psycopg.connect(url, connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT count(*) FROM ingest_checkpoint WHERE aggregated_at IS NULL "
            "AND symbol = ANY(%s)",
            (list(symbols),),
        ).fetchone()
    return int(str(row[0])) if row else 0


# --- What Kafka holds -------------------------------------------------------------------------


def read_topic(
    bootstrap: str, topic: str, timeout: float = 30.0
) -> list[tuple[bytes, dict[str, bytes]]]:
    """Every message of ``topic`` (value, headers) from the beginning to the current end."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"faults-reader-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "log_level": 3,
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        partitions = set(metadata.topics[topic].partitions)
        consumer.subscribe([topic])
        done: set[int] = set()
        out: list[tuple[bytes, dict[str, bytes]]] = []
        deadline = time.monotonic() + timeout
        while done != partitions:
            assert time.monotonic() < deadline, f"reading {topic} took over {timeout:.0f}s"
            for msg in consumer.consume(1000, 0.5):
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        done.add(int(str(msg.partition())))
                        continue
                    raise AssertionError(f"reading {topic}: {err}")
                headers: dict[str, bytes] = {}
                for header in msg.headers() or []:
                    name, value = header[0], header[1]
                    headers[str(name)] = value.encode() if isinstance(value, str) else value or b""
                out.append((msg.value() or b"", headers))
        return out
    finally:
        consumer.close()


def closed_klines_in(bootstrap: str, topic: str) -> list[Kline]:
    return [k for value, _ in read_topic(bootstrap, topic) if (k := decode(value)).closed]


def unique_klines(klines: Iterable[Kline]) -> Iterator[Kline]:
    """Each (symbol, open_time) once; a second, different kline for one key fails."""
    seen: dict[Key, Row] = {}
    for k in klines:
        key, row = (k.symbol, k.open_time), as_row(k)
        if key in seen:
            assert seen[key] == row, f"two different klines for {key}: {seen[key]} and {row}"
            continue
        seen[key] = row
        yield k


def assert_landed_exactly(
    url: str, klines: Sequence[Kline], timeout: float = 60.0, levels: Iterable[str] = LEVELS
) -> None:
    """Wait for kline_1s to hold exactly ``klines`` and each level exactly their aggregation."""
    poll_until(matches(url, "kline_1s", by_key(klines)), timeout, "kline_1s = the klines")
    for level in levels:
        expected = candles(klines, LEVELS[level])
        poll_until(matches(url, f"kline_{level}", expected), timeout, f"kline_{level} = Python's")


def aggregated_checkpoints(url: str) -> int:
    """Checkpoints the minute job has marked done: grows with each pass that found data."""
    with psycopg.connect(url, connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT count(*) FROM ingest_checkpoint WHERE aggregated_at IS NOT NULL"
        ).fetchone()
    return int(str(row[0])) if row else 0


def final_minutes(klines: Sequence[Kline]) -> Callable[[Key], bool]:
    """Whether a minute is before its symbol's last (still open) minute of ``klines``."""
    last: dict[str, int] = {}
    for k in klines:
        last[k.symbol] = max(last.get(k.symbol, 0), minute_start(k.open_time))
    return lambda key: key[1] < last.get(key[0], 0)


def matches_where(
    url: str, relation: str, expected: Mapping[Key, Row], keep: Callable[[Key], bool]
) -> Callable[[], str | bool]:
    """Like :func:`matches`, over the keys ``keep`` accepts only."""
    wanted = {k: v for k, v in expected.items() if keep(k)}
    symbols = {s for s, _ in expected}

    def check() -> str | bool:
        actual = {k: v for k, v in stored(url, relation, symbols).items() if keep(k)}
        return difference(wanted, actual) or True

    return check


def covered(url: str, symbols: Sequence[str], first_ms: int, through_ms: int) -> str | bool:
    """A poll check: every symbol has every second in [first_ms, through_ms] in kline_1s."""
    want = (through_ms - first_ms) // SECOND_MS + 1
    with psycopg.connect(url, connect_timeout=2) as conn:
        have: dict[object, object] = dict(
            conn.execute(
                "SELECT symbol, count(*) FROM kline_1s WHERE symbol = ANY(%s) "
                "AND open_time BETWEEN timestamptz 'epoch' + %s * interval '1 ms' "
                "AND timestamptz 'epoch' + %s * interval '1 ms' GROUP BY symbol",
                (list(symbols), first_ms, through_ms),
            ).fetchall()
        )
    short = {s: want - int(str(have.get(s, 0))) for s in symbols if have.get(s, 0) != want}
    return f"seconds missing per symbol: {short}" if short else True


def first_second(url: str, symbols: Sequence[str]) -> int | None:
    """The earliest open time (ms) in kline_1s of ``symbols``, once every one of them has rows."""
    with psycopg.connect(url, connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT symbol, (extract(epoch FROM min(open_time)) * 1000)::bigint FROM kline_1s "
            "WHERE symbol = ANY(%s) GROUP BY symbol",
            (list(symbols),),
        ).fetchall()
    if len(rows) < len(symbols):
        return None
    return min(int(str(ms)) for _, ms in rows)


def live_sim_klines(symbols: Sequence[str], seed: int, first_ms: int, closed: int) -> list[Kline]:
    """The first ``closed`` klines a live simulated feed started at ``first_ms`` published."""
    seconds = -(-closed // len(symbols))
    return sim_klines(symbols, seed, first_ms, seconds)[:closed]


def backfill(stages: Stages, settings: Settings, start_ms: int, seconds: int) -> list[Kline]:
    """`cryptochart backfill --source sim` of [start_ms, +seconds) for ``settings.symbols``, run
    to its end; returns the klines it published."""
    stage = stages.cli(
        f"backfill-{len(stages.all)}",
        settings,
        "backfill",
        "--source=sim",
        f"--from={start_ms}",
        f"--to={start_ms + seconds * SECOND_MS}",
    )
    assert stage.wait(120) == 0, stage.tail()
    return sim_klines(settings.symbols, settings.sim_seed, start_ms, seconds)


def log_shows(stage: Stage, text: str) -> Callable[[], str | bool]:
    """A poll check: ``text`` is in the stage's log (and the stage still runs)."""

    def check() -> str | bool:
        if text in stage.log():
            return True
        return "" if stage.alive else f"{stage.name} exited:\n{stage.tail()}"

    return check


def while_alive(stage: Stage, check: Callable[[], str | bool]) -> Callable[[], str | bool]:
    """``check``, failing at once if ``stage`` has exited meanwhile."""

    def checked() -> str | bool:
        result = check()
        if result is not True and not stage.alive:
            raise AssertionError(f"{stage.name} exited:\n{stage.tail()}")
        return result

    return checked


def exceeds(measure: Callable[[], int], value: int) -> Callable[[], bool]:
    """A poll check: ``measure()`` has gone past ``value``."""
    return lambda: measure() > value


def any_of(*checks: Callable[[], object]) -> Callable[[], bool]:
    """A poll check that holds when one of ``checks`` does."""
    return lambda: any(check() is True for check in checks)
