"""The pipeline's stages as subprocesses a test can kill -9 and start again, with their logs."""

from __future__ import annotations

import ast
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from cryptochart.core.kline import Kline
from cryptochart.core.settings import ROOT, Settings
from tests.faults.expected import SECOND_MS, sim_klines


def settings_env(settings: Settings, **extra: str) -> dict[str, str]:
    """Environment in which a `cryptochart` subprocess uses exactly ``settings``, plus ``extra``."""
    return {**settings.as_env(), **extra}


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

    def feed(
        self,
        settings: Settings,
        symbols: Sequence[str],
        seed: int,
        start_ms: int,
        count: int,
        speed: float,
    ) -> Stage:
        """``tests.faults.feed``: ``count`` seconds of the simulated klines of ``symbols`` from
        ``start_ms``, published at ``speed`` exchange seconds per wall-clock second."""
        return self.module(
            "feed",
            settings,
            "tests.faults.feed",
            f"--symbols={','.join(symbols)}",
            f"--seed={seed}",
            f"--start-ms={start_ms}",
            f"--count={count}",
            f"--speed={speed}",
        )

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

    def print_logs(self) -> None:
        """Each stage's last lines, for the report of a failed scenario."""
        for stage in self.all:
            print(f"==== {stage.name} ({stage.log_path}) ====\n{stage.tail(40)}")


def assert_alive(*running: Stage) -> None:
    """Each of ``running`` is still up: a stage that died on the way fails the scenario even when
    what it left behind looks right."""
    for stage in running:
        assert stage.alive, f"{stage.name} exited during the scenario:\n{stage.tail()}"


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


def supervised(stage: Stage, check: Callable[[], str | bool]) -> Callable[[], str | bool]:
    """``check``, starting ``stage`` again whenever it has exited, as `cryptochart run` does."""

    def checked() -> str | bool:
        if not stage.alive:
            stage.start()
        return check()

    return checked
