"""Authentication of the local PostgreSQL cluster (`cryptochart services up`), on private
clusters: loopback asks every role for its password (scram-sha-256), the socket serves the
cluster's own operating-system user as the owner (peer), the passwords sit in a 0600 libpq
password file inside a 0700 folder that the default URL names, and a cluster made with trust
authentication is converted in place: passwords set, pg_hba.conf rewritten, reloaded, its data
and its server process kept."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from cryptochart.core.database import with_dbname
from cryptochart.core.settings import Settings
from cryptochart.devservices.pg_auth import LOGIN_ROLES, OWNER
from cryptochart.devservices.ports import free_port
from cryptochart.devservices.postgres import LocalPostgres, local_url
from tests.faults.conftest import PrivateServices
from tests.pipeline import wait_for

# pg_hba.conf as initdb --auth=trust wrote it for clusters made before passwords.
TRUST_HBA = """local   all             all                                     trust
host    all             all             127.0.0.1/32            trust
host    all             all             ::1/128                 trust
local   replication     all                                     trust
host    replication     all             127.0.0.1/32            trust
host    replication     all             ::1/128                 trust
"""


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def loopback(port: int, user: str = OWNER, **extra: str) -> str:
    """A loopback URL with no password and no password file (unless ``extra`` gives one)."""
    return make_conninfo(
        host="127.0.0.1",
        port=port,
        user=user,
        dbname="postgres",
        passfile="/nonexistent",
        connect_timeout=5,
        **extra,
    )


def refused(url: str) -> str:
    """The error a connection to ``url`` gets; fails the test when it connects."""
    try:
        psycopg.connect(url).close()
    except psycopg.OperationalError as exc:
        return str(exc)
    raise AssertionError(f"connected: {url}")


def test_new_cluster_asks_loopback_for_passwords(private_services: PrivateServices) -> None:
    settings, postgres = private_services.settings, private_services.postgres
    port = settings.local_pg_port
    assert mode(postgres.root) == 0o700
    assert mode(postgres.password_file) == 0o600
    assert mode(private_services.kafka.root) == 0o700
    assert "trust" not in (postgres.cluster / "pg_hba.conf").read_text()

    assert "no password supplied" in refused(loopback(port))
    assert "password authentication failed" in refused(loopback(port, password="wrong"))
    for role in LOGIN_ROLES:
        assert "no password supplied" in refused(loopback(port, role))
    with psycopg.connect(settings.database_url) as conn:  # the owner, by the password file
        assert conn.execute("SELECT current_user").fetchone() == (OWNER,)
    for role in LOGIN_ROLES:  # each stage's role by its own line of the file
        with psycopg.connect(with_dbname(settings.database_url, "postgres", user=role)) as conn:
            assert conn.execute("SELECT current_user").fetchone() == (role,)
    passwords = {
        line.split(":")[3]: line.split(":")[4]
        for line in postgres.password_file.read_text().split()
    }
    assert set(passwords) == {OWNER, *LOGIN_ROLES} and len(set(passwords.values())) == 5

    def socket(user: str) -> str:
        return make_conninfo(host=str(postgres.root), port=port, user=user, dbname="postgres")

    with psycopg.connect(socket(OWNER)) as conn:  # peer: who runs the cluster is the owner
        assert conn.execute("SELECT current_user").fetchone() == (OWNER,)
    assert "Peer authentication failed" in refused(socket(LOGIN_ROLES[0]))


@pytest.fixture
def trust_cluster(base_settings: Settings, services: list[str]) -> Iterator[LocalPostgres]:
    """A running private cluster as `services up` made them before passwords: trust for every
    connection, no role with a password, no password file, its folder open; a table in it."""
    data_dir = Path(tempfile.mkdtemp(prefix="cryptochart-trust-"))
    data_dir.chmod(0o755)  # the postgres user must reach the cluster's folder
    port = free_port()
    settings = replace(
        base_settings,
        data_dir=data_dir,
        local_pg_port=port,
        database_url=local_url(data_dir, port, "kept"),
    )
    postgres = LocalPostgres(settings)
    try:
        postgres.up()
        socket = make_conninfo(host=str(postgres.root), port=port, user=OWNER, dbname="kept")
        with psycopg.connect(socket, autocommit=True) as conn:
            conn.execute("CREATE TABLE kept AS SELECT 42 AS answer")
            for role in (OWNER, *LOGIN_ROLES):
                conn.execute(f"ALTER ROLE {role} PASSWORD NULL")
            (postgres.cluster / "pg_hba.conf").write_text(TRUST_HBA)
            conn.execute("SELECT pg_reload_conf()")
        postgres.password_file.unlink()
        postgres.root.chmod(0o755)
        wait_for(lambda: _connects(loopback(port)), 10, "trust authentication in effect")
        yield postgres
    finally:
        postgres.down()
        shutil.rmtree(data_dir, ignore_errors=True)


def _connects(url: str) -> bool:
    try:
        psycopg.connect(url).close()
    except psycopg.OperationalError:
        return False
    return True


def test_services_up_converts_a_trust_cluster_in_place(trust_cluster: LocalPostgres) -> None:
    postgres, port = trust_cluster, trust_cluster.settings.local_pg_port
    server = postgres.pid()
    postgres.up()  # as a test session's set-up does: left as it is
    assert _connects(loopback(port)) and not postgres.password_file.exists()
    postgres.up(convert_auth=True)  # as `cryptochart services up` does
    assert postgres.pid() == server, "reloaded, not restarted"
    wait_for(lambda: not _connects(loopback(port)), 10, "passwords asked on loopback")
    assert "no password supplied" in refused(loopback(port))
    assert "password authentication failed" in refused(loopback(port, password="wrong"))
    assert mode(postgres.root) == 0o700
    assert mode(postgres.password_file) == 0o600
    with psycopg.connect(postgres.settings.database_url) as conn:
        assert conn.execute("SELECT answer FROM kept").fetchone() == (42,)
    postgres.up(convert_auth=True)  # again: nothing left to convert
    assert postgres.pid() == server
