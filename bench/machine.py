"""What the figures were measured on: cores, memory, CPU model and the versions that matter."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

import confluent_kafka
import psycopg

from cryptochart.core.database import connect
from cryptochart.core.settings import ROOT, Settings

PACKAGES = ("psycopg", "confluent-kafka", "litestar", "uvicorn", "websockets", "msgspec")


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _ram_gib() -> float:
    match = re.search(r"MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text())
    return int(match.group(1)) / 2**20 if match else 0.0


def _os() -> str:
    try:
        fields = dict(
            line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if line
        )
        return fields.get("PRETTY_NAME", "").strip('"')
    except OSError:
        return platform.system()


def _postgres(settings: Settings) -> str:
    """The server's version and the extensions the two schema flavours use."""
    try:
        with connect(settings.database_url, timeout=5) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            extensions = conn.execute(
                """SELECT name, default_version FROM pg_available_extensions
                   WHERE name IN ('timescaledb', 'pg_partman') ORDER BY name DESC"""
            ).fetchall()
            preload = conn.execute("SHOW shared_preload_libraries").fetchone()
    except psycopg.Error:
        return "PostgreSQL (unreachable)"
    found = {str(name): str(version) for name, version in extensions}
    timescaledb = (
        f"TimescaleDB {found['timescaledb']}"
        + (" (preloaded)" if preload and "timescaledb" in str(preload[0]) else "")
        if "timescaledb" in found
        else "no TimescaleDB"
    )
    partman = f"pg_partman {found['pg_partman']}" if "pg_partman" in found else "no pg_partman"
    return f"PostgreSQL {row[0] if row else '?'} with {timescaledb}, {partman}"


def _kafka(settings: Settings) -> str:
    jars = sorted(settings.data_dir.glob("kafka/libs/kafka-clients-*.jar"))
    broker = jars[-1].stem.removeprefix("kafka-clients-") if jars else "?"
    return f"Kafka {broker} (KRaft), librdkafka {confluent_kafka.libversion()[0]}"


def _wrk() -> str:
    if shutil.which("wrk") is None:
        return "wrk: not installed"
    out = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    first = (out.stdout or out.stderr).splitlines()
    return " ".join(first[0].split()[:2]) if first else "wrk"


def _tree() -> str:
    """The commit measured, and whether the work tree differs from it (others edit it live)."""
    run = subprocess.run(
        ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
    )
    return run.stdout.strip() or "unknown"


def describe(settings: Settings) -> list[str]:
    """Lines describing the machine and software, for the top of the output."""
    versions = ", ".join(f"{p} {metadata.version(p)}" for p in PACKAGES)
    return [
        f"CPU: {os.cpu_count()} cores, {_cpu_model()}",
        f"RAM: {_ram_gib():.1f} GiB; {_os()}, Linux {platform.release()}",
        f"Python {platform.python_version()}; {versions}",
        f"{_postgres(settings)}; {_kafka(settings)}; {_wrk()}",
        f"code: {_tree()}; load average at start: " + " ".join(f"{x:.2f}" for x in os.getloadavg()),
    ]
