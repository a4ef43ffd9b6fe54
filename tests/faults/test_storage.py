"""The inserter's database refuses to store: INSERT privilege revoked, or the disk full. The
inserter says so in one clear line, keeps retrying without committing Kafka offsets, and once
storage works again the backlog lands exactly once."""

from __future__ import annotations

import contextlib
import errno
import os
import pwd
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from cryptochart.core.database import with_dbname
from cryptochart.core.settings import Settings
from tests.faults.conftest import PrivateServices, Scenario
from tests.faults.expected import SECOND_MS, by_key, past_start
from tests.faults.stages import Stages, backfill, log_shows, supervised, while_alive
from tests.faults.stored import assert_landed_exactly, matches
from tests.faults.waiting import poll_until


def app_role(settings: Settings) -> Settings:
    """The inserter as the producer-side role cryptochart_app (the owner is a superuser, whom no
    REVOKE stops)."""
    name = str(psycopg.conninfo.conninfo_to_dict(settings.database_url)["dbname"])
    return replace(
        settings, database_url=with_dbname(settings.database_url, name, user="cryptochart_app")
    )


def owner_sql(settings: Settings, statement: str) -> None:
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute(statement)


# --- Permission denied -------------------------------------------------------------------------


def test_revoked_insert_loses_nothing(scenario: Scenario, stages: Stages) -> None:
    """With INSERT revoked the inserter fails with a clear line and commits no offsets: once
    the grant is back, the backlog lands exactly once, whether the inserter rode the fault out
    or had to be started again (as `cryptochart run` does)."""
    settings = scenario(symbols=("PERM0USDT", "PERM1USDT"))
    url = settings.database_url
    stages.cli("aggregator", settings, "aggregate")
    inserter = stages.cli("inserter", app_role(settings), "insert")
    start = past_start(240)
    before = backfill(stages, settings, start, 60)
    assert_landed_exactly(url, before, timeout=30, levels=["1m"])

    owner_sql(settings, "REVOKE INSERT ON kline_1s FROM cryptochart_app")
    backlog = backfill(stages, settings, start + 60 * SECOND_MS, 120)
    poll_until(
        lambda: "permission denied for table kline_1s" in inserter.log(),
        30,
        "the inserter to name the refusal",
    )
    owner_sql(settings, "GRANT INSERT ON kline_1s TO cryptochart_app")
    landed = matches(url, "kline_1s", by_key(before + backlog))
    poll_until(supervised(inserter, landed), 30, "the backlog in kline_1s")
    assert_landed_exactly(url, before + backlog, timeout=30)
    assert inserter.stop() == 0, inserter.tail()


def test_inserter_retries_through_revoked_insert(scenario: Scenario, stages: Stages) -> None:
    """The same fault without any restart: the one inserter process rides it out."""
    settings = scenario(symbols=("PERMR0USDT", "PERMR1USDT"))
    url = settings.database_url
    stages.cli("aggregator", settings, "aggregate")
    inserter = stages.cli("inserter", app_role(settings), "insert")
    owner_sql(settings, "REVOKE INSERT ON kline_1s FROM cryptochart_app")
    backlog = backfill(stages, settings, past_start(120), 120)
    poll_until(
        log_shows(inserter, "permission denied for table kline_1s"), 30, "a clear error line"
    )
    owner_sql(settings, "GRANT INSERT ON kline_1s TO cryptochart_app")
    poll_until(while_alive(inserter, matches(url, "kline_1s", by_key(backlog))), 30, "the backlog")
    assert_landed_exactly(url, backlog, timeout=30)
    assert inserter.starts == 1 and inserter.stop() == 0, inserter.tail()


# --- Disk full ---------------------------------------------------------------------------------


@contextlib.contextmanager
def small_disk(where: Path, megabytes: int) -> Iterator[Path]:
    """A tmpfs of ``megabytes`` at ``where``, owned by the postgres user (root only)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={megabytes}M,mode=0700", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        owner = pwd.getpwnam("postgres")
        os.chown(where, owner.pw_uid, owner.pw_gid)
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
        where.rmdir()


def fill(disk: Path) -> Path:
    """Write a file until the disk has no space left; delete it to free the disk."""
    filler = disk / "filler"
    chunk = b"\0" * (1 << 20)
    with filler.open("wb", buffering=0) as f:
        try:
            while True:
                f.write(chunk)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    # The last partial megabyte, page by page.
    with filler.open("ab", buffering=0) as f, contextlib.suppress(OSError):
        while True:
            f.write(b"\0" * 4096)
    return filler


def move_kline_1s(conn: psycopg.Connection[tuple[object, ...]], tablespace: str) -> None:
    """Every partition of kline_1s and its indexes into ``tablespace``, and on TimescaleDB the
    chunks it creates from now on too."""
    if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone():
        conn.execute("SELECT attach_tablespace(%s, 'kline_1s')", (tablespace,))
    partitions = conn.execute(
        "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'kline_1s'::regclass"
    ).fetchall()
    for (partition,) in partitions:
        name = sql.Identifier(str(partition))
        conn.execute(
            sql.SQL("ALTER TABLE {} SET TABLESPACE {}").format(name, sql.Identifier(tablespace))
        )
        for (index,) in conn.execute(
            "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = %s::regclass",
            (str(partition),),
        ).fetchall():
            conn.execute(
                sql.SQL("ALTER INDEX {} SET TABLESPACE {}").format(
                    sql.Identifier(str(index)), sql.Identifier(tablespace)
                )
            )


@pytest.mark.parametrize(
    "full_for", [0.0, pytest.param(20.0, marks=pytest.mark.slow)], ids=["freed", "full_20s"]
)
def test_disk_full_then_freed(
    scenario: Scenario, stages: Stages, private_services: PrivateServices, full_for: float
) -> None:
    """kline_1s on a small tmpfs tablespace of the suite's own cluster, filled up: the inserter
    logs `No space left on device`, retries for as long as the disk stays full, and stores the
    backlog once space is freed."""
    services = private_services
    url = services.database("faults_disk_full")
    disk_dir = services.settings.data_dir / "small-disk"
    tablespace = "faults_small_disk"
    with small_disk(disk_dir, 16) as disk:
        (disk / "ts").mkdir()
        os.chown(disk / "ts", pwd.getpwnam("postgres").pw_uid, pwd.getpwnam("postgres").pw_gid)
        with psycopg.connect(services.settings.database_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("CREATE TABLESPACE {} LOCATION {}").format(
                    sql.Identifier(tablespace), sql.Literal(str(disk / "ts"))
                )
            )
        try:
            settings = scenario(database_url=url, symbols=("DISK0USDT", "DISK1USDT", "DISK2USDT"))
            with psycopg.connect(url, autocommit=True) as conn:
                move_kline_1s(conn, tablespace)
            stages.cli("aggregator", settings, "aggregate")
            inserter = stages.cli("inserter", settings, "insert")
            start = past_start(600)
            before = backfill(stages, settings, start, 30)
            # A bound on waiting, not a speed check: on a loaded 2-core machine the first
            # consumer group join and the first chunk on the tablespace took over 30 s once.
            assert_landed_exactly(url, before, timeout=90, levels=["1m"])

            filler = fill(disk)
            backlog = backfill(stages, settings, start + 30 * SECOND_MS, 540)
            poll_until(
                log_shows(inserter, "No space left on device"), 30, "the inserter to name it"
            )
            time.sleep(full_for)  # the disk stays full this long
            assert inserter.alive, inserter.tail()
            filler.unlink()
            everything = before + backlog
            landed = poll_until(
                while_alive(inserter, matches(url, "kline_1s", by_key(everything))),
                30,
                "the backlog",
            )
            print(f"\ndisk full for {full_for:.0f}s: backlog stored {landed:.2f}s after freeing")
            assert_landed_exactly(url, everything, timeout=30)
            assert inserter.starts == 1 and inserter.stop() == 0, inserter.tail()
        finally:
            for stage in stages.all:
                if stage.alive and stage.proc is not None:
                    stage.proc.kill()
                    stage.proc.wait(10)
            with psycopg.connect(services.settings.database_url, autocommit=True) as admin:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier("faults_disk_full")
                    )
                )
                admin.execute(
                    sql.SQL("DROP TABLESPACE IF EXISTS {}").format(sql.Identifier(tablespace))
                )
