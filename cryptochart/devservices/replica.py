"""A streaming replica of the local PostgreSQL cluster: a hot standby the API can read from.

With ``CRYPTOCHART_LOCAL_PG_REPLICA=on``, `cryptochart services up` copies the running primary
with pg_basebackup into ``<data_dir>/pg-replica`` once, and starts the copy as a hot standby on
127.0.0.1:<local_pg_replica_port>, streaming from the primary through a physical replication
slot (the primary keeps the WAL the replica has not received, however long it is down). The
replica streams over the primary's socket as the cluster's owner (peer authentication, the
``local replication`` line of pg_hba.conf); its own clients log in on loopback with the primary's
roles and passwords, listed for its port in ``<data_dir>/pg-replica/pgpass`` (mode 0600). It
preloads TimescaleDB exactly when the primary does.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg.conninfo import make_conninfo

from cryptochart.devservices.pg_auth import OWNER, PasswordFile
from cryptochart.devservices.postgres import (
    SERVER_CONF,
    ClusterFolder,
    LocalPostgres,
    as_owner,
    give_to_owner,
    server_bindir,
    server_settings,
    timescaledb_installed,
)
from cryptochart.devservices.process import (
    ServiceError,
    ensure_port_free,
    read_pid,
    run,
    wait_until,
)

SLOT = "cryptochart_replica"  # the primary's physical replication slot for this replica
REPLICA_CONF = "cryptochart-replica.conf"  # the settings that make the copy a standby


@dataclass(frozen=True)
class LocalReplica(ClusterFolder):
    """A streaming replica of the primary; its password file names the replica's port with the
    primary's passwords."""

    folder = "pg-replica"

    @property
    def primary(self) -> LocalPostgres:
        return LocalPostgres(self.settings)

    @property
    def managed(self) -> bool:
        """True when asked for, and the primary is the local cluster (an external one has its
        own replicas)."""
        return self.settings.local_pg_replica and self.primary.managed

    def pid(self) -> int | None:
        return read_pid(self.cluster / "postmaster.pid")

    def url(self, dbname: str, role: str = OWNER) -> str:
        """``role``'s loopback URL of ``dbname`` on the replica, naming its password file."""
        passfile = quote(str(self.password_file))
        port = self.settings.local_pg_replica_port
        return f"postgresql://{role}@127.0.0.1:{port}/{dbname}?passfile={passfile}"

    def up(self) -> None:
        """Copy the running primary once, configure, start (or restart when the settings
        changed) and wait until the standby accepts reads."""
        if self.primary.pid() is None:
            raise ServiceError(
                "the PostgreSQL replica is copied from the local primary, which is not running: "
                "run `cryptochart services up` with CRYPTOCHART_LOCAL_PG_REPLICA=on"
            )
        bindir = server_bindir()
        self._create_slot()
        self._base_backup(bindir)
        changed = self._configure(bindir)
        PasswordFile(self.password_file, self.settings.local_pg_replica_port).write(
            PasswordFile(self.primary.password_file, self.settings.local_pg_port).passwords()
        )
        if self.pid() is not None and changed:
            self.down()
        if self.pid() is None:
            self.start()

    def start(self) -> None:
        """Start the configured standby, and wait until it accepts reads."""
        ensure_port_free(self.settings.local_pg_replica_port, "the PostgreSQL replica")
        run(
            as_owner(
                *(str(server_bindir() / "pg_ctl"), "-D", str(self.cluster)),
                *("-l", str(self.log_file), "-w", "-t", "60", "start"),
            ),
            "starting the PostgreSQL replica (see " + str(self.log_file) + ")",
        )
        wait_until(self._accepts_reads, 60, "the PostgreSQL replica to accept reads")

    def down(self) -> None:
        if self.pid() is None:
            return
        run(
            as_owner(
                *(str(server_bindir() / "pg_ctl"), "-D", str(self.cluster)),
                *("-m", "fast", "-w", "stop"),
            ),
            "stopping the PostgreSQL replica",
        )

    def status(self) -> str:
        if not self.primary.managed:
            return "postgres replica: not started (the primary is external; it has its own)"
        pid = self.pid()
        where = (
            f"127.0.0.1:{self.settings.local_pg_replica_port}, data {self.cluster}, "
            f"standby of 127.0.0.1:{self.settings.local_pg_port}"
        )
        return f"postgres replica: {'running, pid ' + str(pid) if pid else 'stopped'} ({where})"

    def admin_dsn(self, dbname: str) -> str:
        # The replica's socket, as the operating-system user who runs it (peer, like the primary).
        return make_conninfo(
            host=str(self.root),
            port=self.settings.local_pg_replica_port,
            user=OWNER,
            dbname=dbname,
        )

    def _create_slot(self) -> None:
        with psycopg.connect(self.primary.admin_dsn("postgres"), autocommit=True) as conn:
            conn.execute(
                "SELECT pg_create_physical_replication_slot(%(slot)s) WHERE NOT EXISTS"
                " (SELECT 1 FROM pg_replication_slots WHERE slot_name = %(slot)s)",
                {"slot": SLOT},
            )

    def _base_backup(self, bindir: Path) -> None:
        """The primary copied into the replica's folder, once (into a fresh folder first, so a
        copy cut short is never taken for a replica)."""
        if (self.cluster / "PG_VERSION").exists():
            return
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o700)  # its password file and its socket are the owner's alone
        copying = self.root / "data.new"
        shutil.rmtree(copying, ignore_errors=True)
        give_to_owner(self.root)
        run(
            as_owner(
                *(str(bindir / "pg_basebackup"), "-D", str(copying)),
                *("-h", str(self.primary.root), "-p", str(self.settings.local_pg_port)),
                *("-U", OWNER, "-X", "stream", "-S", SLOT, "--checkpoint=fast", "-w"),
            ),
            "pg_basebackup of the local PostgreSQL",
        )
        (copying / "standby.signal").touch()
        with (copying / "postgresql.conf").open("a") as f:
            f.write(f"\n# cryptochart local replica\ninclude_if_exists = '{REPLICA_CONF}'\n")
        (copying / "postmaster.opts").unlink(missing_ok=True)
        give_to_owner(copying)
        copying.rename(self.cluster)

    def _configure(self, bindir: Path) -> bool:
        """Write the standby's settings and the primary's installed-software settings; True
        when either changed."""
        primary = make_conninfo(
            host=str(self.primary.root),
            port=self.settings.local_pg_port,
            user=OWNER,
            application_name=SLOT,
        ).replace("'", "''")
        wanted = {
            REPLICA_CONF: (
                "# written by `cryptochart services up`; edits are overwritten\n"
                f"port = {self.settings.local_pg_replica_port}\n"
                f"unix_socket_directories = '{self.root}'\n"
                "hot_standby = on\n"
                # The primary keeps the rows a long read on the standby still sees, so replay
                # never cancels an API query.
                "hot_standby_feedback = on\n"
                f"primary_slot_name = '{SLOT}'\n"
                f"primary_conninfo = '{primary}'\n"
            ),
            SERVER_CONF: server_settings(timescaledb_installed(bindir)),
        }
        changed = False
        for name, text in wanted.items():
            path = self.cluster / name
            if not path.exists() or path.read_text() != text:
                path.write_text(text)
                give_to_owner(path)
                changed = True
        return changed

    def _accepts_reads(self) -> bool:
        try:
            with psycopg.connect(self.admin_dsn("postgres"), connect_timeout=2) as conn:
                return conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
        except psycopg.OperationalError:
            return False
