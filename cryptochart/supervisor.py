"""`cryptochart run`: the whole product in one process tree.

Brings up the local services, migrates, backfills the last hour when the database is empty, then
runs the producer, inserter, minute job and API as child processes, restarting any that dies and
stopping all of them on Ctrl-C / SIGTERM.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cryptochart.core.settings import Settings

log = logging.getLogger(__name__)
RESTART_DELAY_MAX = 30.0
FIRST_START_HISTORY = 3600  # seconds of klines fetched or generated when the database is empty
# Every variable naming a database connection; a stage is handed its own only.
DATABASE_URLS = (
    "CRYPTOCHART_DATABASE_URL",
    "CRYPTOCHART_INSERTER_DATABASE_URL",
    "CRYPTOCHART_MINUTE_JOB_DATABASE_URL",
    "CRYPTOCHART_API_DATABASE_URL",
)


@dataclass
class Child:
    name: str
    args: Sequence[str]
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started: float = field(default=0.0)

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cryptochart.cli", *self.args], env=self.env
        )
        self.started = time.monotonic()
        log.info("started %s (pid %d)", self.name, self.proc.pid)


def stage_env(base: Mapping[str, str], **own: str) -> dict[str, str]:
    """``base`` without any database URL but the stage's ``own`` (variable name → URL): each
    stage connects as its own role and never learns the owner's URL."""
    env = {k: v for k, v in base.items() if k not in DATABASE_URLS}
    return {**env, **own}


def inserter_instance_id(settings: Settings) -> str:
    """The supervised inserter's static group member id: the configured one, else one of this
    host and data directory, the same at every restart (so a restarted inserter takes its
    partitions back at once) and different for another `cryptochart run` beside it."""
    if settings.inserter_instance_id:
        return settings.inserter_instance_id
    folder = hashlib.blake2s(str(settings.data_dir.resolve()).encode(), digest_size=4).hexdigest()
    return f"{socket.gethostname()}-{folder}-inserter"


def stage_children(
    settings: Settings, base: Mapping[str, str], produce: Sequence[str]
) -> list[Child]:
    """The stages of ``cryptochart run``, each with the one database URL it needs (the producer
    none): the inserter's (and its static member id), the minute job's and the API's read-only
    one."""
    return [
        Child(
            "inserter",
            ["insert"],
            stage_env(
                base,
                CRYPTOCHART_INSERTER_DATABASE_URL=settings.inserter_dsn,
                CRYPTOCHART_INSERTER_INSTANCE_ID=inserter_instance_id(settings),
            ),
        ),
        Child(
            "minute job",
            ["minute-job"],
            stage_env(base, CRYPTOCHART_MINUTE_JOB_DATABASE_URL=settings.minute_job_dsn),
        ),
        Child("producer", ["produce", *produce], stage_env(base)),
        Child("api", ["serve"], stage_env(base, CRYPTOCHART_API_DATABASE_URL=settings.api_dsn)),
    ]


def supervise(children: list[Child], stop: threading.Event) -> int:
    """Run the children until ``stop``; restart a child that exits, with growing delays."""
    for child in children:
        child.start()
    due: dict[str, float] = {}
    while not stop.wait(0.5):
        for child in children:
            assert child.proc is not None
            code = child.proc.poll()
            if code is None:
                continue
            if child.name not in due:
                delay = min(RESTART_DELAY_MAX, 2.0**child.restarts)
                if time.monotonic() - child.started > 60:
                    child.restarts, delay = 0, 1.0  # it ran a while: a fresh failure
                log.error("%s exited with %d; restarting in %.0fs", child.name, code, delay)
                due[child.name] = time.monotonic() + delay
            elif time.monotonic() >= due[child.name]:
                del due[child.name]
                child.restarts += 1
                child.start()
    for child in children:
        if child.proc is not None and child.proc.poll() is None:
            child.proc.send_signal(signal.SIGTERM)
    for child in children:
        if child.proc is not None:
            try:
                child.proc.wait(30)
            except subprocess.TimeoutExpired:
                child.proc.kill()
    return 0


def _has_klines(settings: Settings) -> bool:
    from cryptochart.core.database import connect

    with connect(settings.database_url) as conn:
        row = conn.execute("SELECT EXISTS (SELECT FROM kline_1s)").fetchone()
    return bool(row and row[0])


def run(settings: Settings, extra_source_args: Sequence[str]) -> int:
    from cryptochart.devservices import local

    for line in local.up(settings, convert_auth=True):
        log.info(line)
    env = dict(os.environ)
    migrate = subprocess.run([sys.executable, "-m", "cryptochart.cli", "migrate"], env=env)
    if migrate.returncode != 0:
        return migrate.returncode
    history = [] if _has_klines(settings) else [f"--history={FIRST_START_HISTORY}"]
    if history:
        log.info("empty database: the producer starts with the last hour, so the chart has history")
    children = stage_children(settings, env, [*extra_source_args, *history])
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    url = f"http://{settings.api_host}:{settings.api_port}/"
    threading.Thread(target=_announce, args=(url, stop), daemon=True).start()
    return supervise(children, stop)


def _announce(url: str, stop: threading.Event) -> None:
    """Say where the chart is once the API answers /ready."""
    import httpx

    while not stop.wait(0.5):
        try:
            if httpx.get(url + "ready", timeout=2).status_code == 200:
                log.info("cryptochart is up: open %s", url)
                return
        except httpx.HTTPError:
            continue
