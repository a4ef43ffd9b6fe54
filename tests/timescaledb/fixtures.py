"""A TimescaleDB server for tests where no real one exists: PostgreSQL 17 + TimescaleDB built to
WASM (PGlite), served on a local TCP port by ``server.mjs`` beside this file.

Limits of this server that tests must respect: one connection at a time (a second one waits
until the first closes), no background jobs (``CALL run_job(id)`` runs a policy), and
``COPY FROM STDIN`` crashes it (insert with plain INSERTs). One in-memory database (it is called
template1), whatever ``dbname`` a client asks for; any user and password are accepted. Each
connection starts a fresh session, as with a real server.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

HERE = Path(__file__).resolve().parent
SERVER = HERE / "server.mjs"
START_TIMEOUT = 60.0  # seconds; the WASM database starts in about 2 s
POLL = 0.05  # seconds between readiness checks


def missing_reason() -> str | None:
    """Why the server cannot start here (None when it can): its npm packages are not installed."""
    if not (HERE / "node_modules" / "@electric-sql" / "pglite-socket").is_dir():
        return (
            "TimescaleDB WASM test server not installed (tests/timescaledb/node_modules missing): "
            "run scripts/setup.sh --test"
        )
    return None


@contextmanager
def timescaledb_server() -> Iterator[str]:
    """Start the server on a free port, wait until PostgreSQL answers, yield its conninfo, stop it.

    Skips the calling test only when the npm packages are missing; any other failure to start
    fails with the server's log.
    """
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH, though tests/timescaledb/node_modules exists")
    with tempfile.TemporaryDirectory(prefix="cc-timescaledb-") as tmp:
        ready = Path(tmp) / "address"
        log_path = Path(tmp) / "server.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [node, str(SERVER), "--port", "0", "--ready-file", str(ready)],
                cwd=HERE,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            yield _wait_ready(proc, ready, log_path)
            if proc.poll() is not None:
                pytest.fail(
                    f"TimescaleDB WASM server died (exit {proc.returncode}):\n"
                    f"{log_path.read_text()}"
                )
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def conninfo(address: str) -> str:
    host, _, port = address.rpartition(":")
    # pglite-socket offers no SSL or GSS encryption: say so, or libpq's negotiation fails.
    return make_conninfo(
        host=host,
        port=port,
        user="postgres",
        password="postgres",
        dbname="postgres",
        sslmode="disable",
        gssencmode="disable",
        connect_timeout="5",
    )


def _wait_ready(proc: subprocess.Popen[bytes], ready: Path, log_path: Path) -> str:
    deadline = time.monotonic() + START_TIMEOUT
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(
                f"TimescaleDB WASM server exited with {proc.returncode}:\n{log_path.read_text()}"
            )
        if ready.exists():
            url = conninfo(ready.read_text().strip())
            try:
                psycopg.connect(url).close()
            except psycopg.OperationalError as exc:
                last_error = exc
            else:
                return url
        time.sleep(POLL)
    pytest.fail(
        f"TimescaleDB WASM server not ready after {START_TIMEOUT:.0f} s "
        f"(last error: {last_error}):\n{log_path.read_text()}"
    )
