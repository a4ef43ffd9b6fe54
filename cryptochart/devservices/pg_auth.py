"""Who may connect to the local PostgreSQL cluster, and how.

The local socket serves the operating-system user who runs the cluster (peer authentication,
mapped to the owner role); loopback asks every role for its password (scram-sha-256). The
passwords are generated once and kept in ``<data_dir>/pg/pgpass``, a libpq password file (mode
0600) that the default database URL names, so every command and test finds its role's password
without being told.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

OWNER = "cryptochart"  # the cluster's superuser (initdb -U)
# The product's login roles (the migrations grant their privileges); each gets its own password.
LOGIN_ROLES = (
    "cryptochart_app",
    "cryptochart_minute_job",
    "cryptochart_api",
    "cryptochart_analyst",
)
IDENT_MAP = "owner"


@dataclass(frozen=True)
class PasswordFile:
    """``host:port:*:role:password`` lines for the cluster's roles on loopback."""

    path: Path
    port: int

    def passwords(self) -> dict[str, str]:
        """Every role's password found in the file (none when it does not exist)."""
        if not self.path.exists():
            return {}
        found = {}
        for line in self.path.read_text().splitlines():
            host, port, _, role, password = (line.split(":", 4) + [""] * 5)[:5]
            if host == "127.0.0.1" and port == str(self.port) and password:
                found[role] = password
        return found

    def ensure(self) -> tuple[dict[str, str], set[str]]:
        """The owner's and every login role's password, generated where missing (file 0600);
        and the roles whose password was generated now."""
        passwords = self.passwords()
        missing = {r for r in (OWNER, *LOGIN_ROLES) if r not in passwords}
        for role in missing:
            passwords[role] = secrets.token_urlsafe(24)  # letters, digits, - and _: no escaping
        if missing or self.path.stat().st_mode & 0o777 != 0o600:
            self.write(passwords)
        return passwords, missing

    def write(self, passwords: dict[str, str]) -> None:
        """Replace the file (mode 0600) with one line per role of ``passwords``."""
        text = "".join(f"127.0.0.1:{self.port}:*:{r}:{p}\n" for r, p in passwords.items())
        temporary = self.path.with_name(self.path.name + ".new")
        temporary.unlink(missing_ok=True)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        temporary.replace(self.path)


def hba_conf() -> str:
    """pg_hba.conf: the socket by operating-system user, loopback by password, nothing else."""
    return (
        "# written by `cryptochart services up`: the local socket for the cluster's own\n"
        "# operating-system user (peer, mapped to the owner in pg_ident.conf), loopback by\n"
        "# password (scram-sha-256; the passwords are in the libpq password file pgpass)\n"
        f"local   all          all                   peer map={IDENT_MAP}\n"
        "host    all          all   127.0.0.1/32    scram-sha-256\n"
        "host    all          all   ::1/128         scram-sha-256\n"
        f"local   replication  all                   peer map={IDENT_MAP}\n"
        "host    replication  all   127.0.0.1/32    scram-sha-256\n"
        "host    replication  all   ::1/128         scram-sha-256\n"
    )


def ident_conf(server_user: str, admin_user: str) -> str:
    """pg_ident.conf: the operating-system user running the cluster, and the one running
    `services up`, are the owner on the socket."""
    users = dict.fromkeys([server_user, admin_user])
    lines = "".join(f"{IDENT_MAP}  {user}  {OWNER}\n" for user in users)
    return "# written by `cryptochart services up`\n" + lines


def set_passwords(
    conn: psycopg.Connection[tuple[object, ...]], passwords: dict[str, str], renewed: set[str]
) -> None:
    """Give each role without one, or whose password was ``renewed``, its password; a login role
    the migrations have not made yet is made here (LOGIN only, as they make it), so the stages
    can log in from the first run. Roles that have theirs are left alone (concurrent ALTER ROLE
    of one role fails)."""
    for role, password in passwords.items():
        row = conn.execute(
            "SELECT rolpassword IS NOT NULL FROM pg_authid WHERE rolname = %s", (role,)
        ).fetchone()
        if row is not None and row[0] and role not in renewed:
            continue
        verb = "ALTER" if row is not None else "CREATE"
        conn.execute(
            sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(password)
            )
        )
