"""A PostgreSQL cluster of the project's own, from Debian's packages, on loopback.

The cluster lives in ``<data_dir>/pg`` (mode 0700) and listens on 127.0.0.1:<local_pg_port>
only; loopback connections need their role's password, kept in ``<data_dir>/pg/pgpass``
(``pg_auth``). It is a development and test server, not a deployment. Where the TimescaleDB
extension is installed (``scripts/timescaledb.sh``), the server preloads it.
"""

from __future__ import annotations

import logging
import os
import pwd
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar
from urllib.parse import quote

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from cryptochart.core.database import describe
from cryptochart.core.settings import Settings
from cryptochart.devservices.pg_auth import (
    OWNER,
    PasswordFile,
    hba_conf,
    ident_conf,
    set_passwords,
)
from cryptochart.devservices.process import (
    ServiceError,
    ensure_port_free,
    read_pid,
    run,
    wait_until,
)

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
log = logging.getLogger(__name__)
SERVER_PACKAGES = ("postgresql", "postgresql-15-partman")
SERVER_CONF = "cryptochart.conf"  # settings that follow what is installed (TimescaleDB)


@dataclass(frozen=True)
class ClusterFolder:
    """A local cluster's folder under the data directory (``folder``): its data files, server log
    and libpq password file (mode 0600)."""

    folder: ClassVar[str]
    settings: Settings

    @property
    def root(self) -> Path:
        return self.settings.data_dir / self.folder

    @property
    def cluster(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "postgres.log"

    @property
    def password_file(self) -> Path:
        return self.root / "pgpass"


@dataclass(frozen=True)
class LocalPostgres(ClusterFolder):
    """The primary; its password file holds every local role's password."""

    folder = "pg"

    @property
    def managed(self) -> bool:
        """True when the database URL points at this local cluster (else it is external)."""
        params = conninfo_to_dict(self.settings.database_url)
        host = str(params.get("host", "localhost"))
        port = int(str(params.get("port", 5432)))
        return host in LOOPBACK and port == self.settings.local_pg_port

    def pid(self) -> int | None:
        return read_pid(self.cluster / "postmaster.pid")

    def up(self, convert_auth: bool = False) -> None:
        """Install if needed, initialise once, configure, start (or restart when the settings or
        the server's binaries changed under it), wait, set the roles' passwords, and create the
        database. ``convert_auth``: a cluster made with trust authentication is given passwords
        (else it is left as it is)."""
        bindir = server_bindir()
        self._init_cluster(bindir)
        changed = self._configure(bindir)
        pid = self.pid()
        if pid is not None and (changed or _binary_replaced(pid)):
            self.down()
        if self.pid() is None:
            self.start()
        self._secure(convert_auth)
        self._create_database()

    def start(self) -> None:
        """Start the initialised cluster as it is configured, and wait for it."""
        ensure_port_free(self.settings.local_pg_port, "PostgreSQL")
        run(
            as_owner(
                str(server_bindir() / "pg_ctl"),
                "-D",
                str(self.cluster),
                "-l",
                str(self.log_file),
                "-w",
                "-t",
                "60",
                "start",
            ),
            "starting PostgreSQL (see " + str(self.log_file) + ")",
        )
        wait_until(self._accepts_connections, 60, "PostgreSQL to accept connections")

    def down(self) -> None:
        if self.pid() is None:
            return
        run(
            as_owner(
                str(server_bindir() / "pg_ctl"),
                "-D",
                str(self.cluster),
                "-m",
                "fast",
                "-w",
                "stop",
            ),
            "stopping PostgreSQL",
        )

    def status(self) -> str:
        if not self.managed:
            return f"postgres: external at {describe(self.settings.database_url).split('@', 1)[1]}"
        pid = self.pid()
        where = f"127.0.0.1:{self.settings.local_pg_port}, data {self.cluster}"
        return f"postgres: {'running, pid ' + str(pid) if pid else 'stopped'} ({where})"

    def _init_cluster(self, bindir: Path) -> None:
        if (self.cluster / "PG_VERSION").exists():
            return
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o700)  # the password file and the socket are the owner's alone
        self.cluster.mkdir(mode=0o700, exist_ok=True)
        owner_password = self.root / "initdb-password"  # initdb reads it; removed at once
        fd = os.open(owner_password, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self._passwords().ensure()[0][OWNER] + "\n")
        give_to_owner(self.root)
        try:
            run(
                as_owner(
                    str(bindir / "initdb"),
                    "-D",
                    str(self.cluster),
                    "-U",
                    OWNER,
                    f"--pwfile={owner_password}",
                    "--auth-local=peer",
                    "--auth-host=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                ),
                "initdb",
            )
        finally:
            owner_password.unlink()
        self._write_auth()
        conf = self.cluster / "postgresql.conf"
        with conf.open("a") as f:
            f.write(
                "\n# cryptochart local cluster\n"
                "listen_addresses = '127.0.0.1'\n"
                f"port = {self.settings.local_pg_port}\n"
                f"unix_socket_directories = '{self.root}'\n"
                "max_connections = 200\n"
                "shared_buffers = 256MB\n"
                "work_mem = 16MB\n"
                "max_wal_size = 2GB\n"
                "log_min_messages = warning\n"
                f"include_if_exists = '{SERVER_CONF}'\n"
            )

    def _configure(self, bindir: Path) -> bool:
        """Write the settings that depend on what is installed; True when they changed."""
        conf = self.cluster / SERVER_CONF
        wanted = server_settings(timescaledb_installed(bindir))
        if conf.exists() and conf.read_text() == wanted:
            return False
        main = self.cluster / "postgresql.conf"
        include = f"include_if_exists = '{SERVER_CONF}'\n"
        if include not in main.read_text():  # a cluster made before this file existed
            with main.open("a") as f:
                f.write(include)
        conf.write_text(wanted)
        give_to_owner(conf)
        return True

    def _secure(self, convert: bool) -> None:
        """Every role's password set from the password file; for a cluster made with trust
        authentication (``convert``), then pg_hba.conf rewritten to ask for them and reloaded:
        no restart, no data touched."""
        if not convert and (self.cluster / "pg_hba.conf").read_text() != hba_conf():
            log.warning(
                "PostgreSQL in %s lets every local connection in without a password: "
                "`cryptochart services up` gives its roles passwords",
                self.cluster,
            )
            return
        self.root.chmod(0o700)
        with psycopg.connect(self.admin_dsn("postgres"), autocommit=True) as conn:
            set_passwords(conn, *self._passwords().ensure())
            if self._write_auth():
                conn.execute("SELECT pg_reload_conf()")

    def _write_auth(self) -> bool:
        """Write pg_hba.conf and pg_ident.conf; True when either changed."""
        ours = pwd.getpwuid(os.geteuid()).pw_name
        server_user = "postgres" if os.geteuid() == 0 else ours  # see _as_owner
        wanted = {"pg_hba.conf": hba_conf(), "pg_ident.conf": ident_conf(server_user, ours)}
        changed = False
        for name, text in wanted.items():
            path = self.cluster / name
            if path.read_text() != text:
                path.write_text(text)
                give_to_owner(path)
                changed = True
        return changed

    def _passwords(self) -> PasswordFile:
        return PasswordFile(self.password_file, self.settings.local_pg_port)

    def _accepts_connections(self) -> bool:
        try:
            with psycopg.connect(self.admin_dsn("postgres"), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def _create_database(self) -> None:
        name = str(conninfo_to_dict(self.settings.database_url).get("dbname", "cryptochart"))
        with psycopg.connect(self.admin_dsn("postgres"), autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def admin_dsn(self, dbname: str) -> str:
        # The socket, as the operating-system user who runs the cluster: no password needed.
        return make_conninfo(
            host=str(self.root), port=self.settings.local_pg_port, user=OWNER, dbname=dbname
        )


def as_owner(*cmd: str) -> list[str]:
    """``cmd`` as the user who runs the servers: PostgreSQL refuses to run as root, so as root
    it runs as the packages' postgres user."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else list(cmd)


def give_to_owner(path: Path) -> None:
    """``path`` and everything under it owned by the user who runs the servers."""
    if os.geteuid() != 0:
        return
    owner = pwd.getpwnam("postgres")
    for entry in (path, *path.rglob("*")):
        os.chown(entry, owner.pw_uid, owner.pw_gid)


def local_url(data_dir: Path, port: int, dbname: str) -> str:
    """The owner's URL of a local cluster in ``data_dir`` on ``port``, naming its password file."""
    passfile = quote(str(data_dir / "pg" / "pgpass"))
    return f"postgresql://{OWNER}@127.0.0.1:{port}/{dbname}?passfile={passfile}"


def server_settings(timescaledb: bool) -> str:
    """The part of the server's configuration that follows what is installed."""
    lines = ["# written by `cryptochart services up`; edits are overwritten"]
    if timescaledb:
        lines += [
            "shared_preload_libraries = 'timescaledb'",
            "timescaledb.telemetry_level = off",
            # One scheduler per database with the extension, plus the jobs it runs: a test
            # session holds a few dozen databases at once, and a database without a free worker
            # runs no policy at all.
            "timescaledb.max_background_workers = 48",
            "max_worker_processes = 56",
        ]
    return "\n".join(lines) + "\n"


def timescaledb_installed(bindir: Path) -> bool:
    """True when the extension's files are installed for the server in ``bindir``."""
    major = bindir.parent.name
    return Path(f"/usr/share/postgresql/{major}/extension/timescaledb.control").exists()


def _binary_replaced(pid: int) -> bool:
    """True when the running server's executable was replaced (a package upgrade): its new
    backends would load the new version's libraries into the old server, so it must restart."""
    try:
        return os.readlink(f"/proc/{pid}/exe").endswith(" (deleted)")
    except OSError:
        return False


def server_bindir() -> Path:
    """The newest installed server's bin folder; installs Debian's server if none is there."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if not found:
        _apt_install(SERVER_PACKAGES)
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        raise ServiceError("no PostgreSQL server found under /usr/lib/postgresql")
    return found[-1].parent


def _apt_install(packages: tuple[str, ...]) -> None:
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise ServiceError(
            f"PostgreSQL server is not installed; run: sudo apt-get install {' '.join(packages)}"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "update", "-q"], "apt-get update", env=env)
    run(["apt-get", "install", "-y", "-q", *packages], "apt-get install", env=env)
