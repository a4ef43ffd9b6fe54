"""The product's stages as child processes (exactly what `cryptochart run` starts), and the CPU
and memory they, PostgreSQL and Kafka use while a benchmark runs."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from cryptochart.core.settings import Settings
from cryptochart.devservices.kafka import LocalKafka
from cryptochart.devservices.postgres import LocalPostgres

# PostgreSQL's own background processes: shared by every database of the cluster, counted in full.
PG_BACKGROUND = (
    "checkpointer",
    "background writer",
    "walwriter",
    "autovacuum launcher",
    "logical replication launcher",
)


def stage_env(settings: Settings, **extra: str) -> dict[str, str]:
    """Environment that makes a `cryptochart` child use these settings."""
    return {**settings.as_env(), **extra}


@dataclass
class Stage:
    """One running child; its stderr goes to ``log``."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 20.0) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def spawn(
    settings: Settings,
    name: str,
    args: list[str],
    logs: Path,
    module: str = "cryptochart.cli",
    **env: str,
) -> Stage:
    """Start ``python -m <module> <args>`` with ``settings`` (and ``env``) in its environment."""
    log = logs / f"{name}.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        env=stage_env(settings, **env),
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )
    return Stage(name, proc, log)


def stop_all(stages: Iterable[Stage]) -> None:
    for stage in stages:
        stage.stop()


def postgres_processes(settings: Settings, dbname: str) -> list[psutil.Process]:
    """The postmaster, its background processes and the backends of ``dbname``; backends of
    other databases (other engineers' tests on the shared cluster) are left out."""
    pid = LocalPostgres(settings).pid()
    if pid is None:
        return []
    try:
        postmaster = psutil.Process(pid)
        found = [postmaster]
        for child in postmaster.children():
            title = " ".join(child.cmdline())
            if dbname in title or any(title.endswith(f"postgres: {b}") for b in PG_BACKGROUND):
                found.append(child)
        return found
    except psutil.Error:
        return []


def kafka_processes(settings: Settings) -> list[psutil.Process]:
    """The broker's JVM (shared with other users of the broker: counted in full)."""
    pid = LocalKafka(settings).pid()
    try:
        return [psutil.Process(pid)] if pid is not None else []
    except psutil.Error:
        return []


def pids(*pid_list: int) -> Callable[[], list[psutil.Process]]:
    def find() -> list[psutil.Process]:
        found = []
        for pid in pid_list:
            with contextlib.suppress(psutil.Error):
                found.append(psutil.Process(pid))
        return found

    return find


@dataclass
class CpuMeter:
    """CPU seconds per group of processes between ``start`` and ``stop``. Sampled often, so a
    process that exits in the window keeps what it had used at its last sample."""

    groups: dict[str, Callable[[], list[psutil.Process]]]
    _first: dict[tuple[str, int, float], float] = field(default_factory=dict)
    _last: dict[tuple[str, int, float], float] = field(default_factory=dict)
    _rss: dict[str, int] = field(default_factory=dict)
    _started: float = 0.0
    _started_epoch: float = 0.0
    _stopped: float = 0.0

    def start(self) -> None:
        self._first.clear()
        self._last.clear()
        self._rss.clear()
        self._started = time.monotonic()
        self._started_epoch = time.time()
        self.sample()

    def sample(self) -> None:
        for group, find in self.groups.items():
            rss = 0
            for proc in find():
                try:
                    with proc.oneshot():
                        times = proc.cpu_times()
                        born = proc.create_time()
                        key = (group, proc.pid, born)
                        rss += proc.memory_info().rss
                except psutil.Error:
                    continue
                used = times.user + times.system
                if key not in self._first:
                    # A process born in the window counts from zero.
                    self._first[key] = used if born < self._started_epoch else 0.0
                self._last[key] = used
            self._rss[group] = max(self._rss.get(group, 0), rss)

    def stop(self) -> None:
        self.sample()
        self._stopped = time.monotonic()

    @property
    def wall(self) -> float:
        return self._stopped - self._started

    def seconds(self) -> dict[str, float]:
        out = dict.fromkeys(self.groups, 0.0)
        for key, last in self._last.items():
            out[key[0]] += last - self._first[key]
        return out

    def percent_of_box(self) -> dict[str, float]:
        """Per group, CPU time as a share of every core over the window (100 = all cores)."""
        cores = os.cpu_count() or 1
        return {g: 100 * s / (self.wall * cores) for g, s in self.seconds().items()}

    def peak_rss(self) -> dict[str, int]:
        return dict(self._rss)
