"""PostgreSQL in the lab: a primary, and physical streaming standbys made with pg_basebackup.

Configuration lives outside the data directory (like Debian's /etc/postgresql layout), so that
pg_basebackup and pg_rewind never copy one node's address or port onto another. Servers accept
TCP connections over TLS only, with a certificate of the lab's CA for their address: every
client of the lab (inventory, replication, writer) verifies it (sslmode=verify-full).
"""

from __future__ import annotations

import glob
import os
import time
from pathlib import Path

from lab.core import Component, DebianPackage, InventoryHost, LabError, stop_process

# Lab-only credentials for servers bound to loopback; inventories/lab carries the same values
# (a unit test keeps them equal).
ADMIN_USER = "postgres"
ADMIN_PASSWORD = "lab-admin-secret"
REPLICATION_USER = "replicator"
REPLICATION_PASSWORD = "lab-replication-secret"


# The lab's max_connections (tests that raise it leave the pair to be reset).
MAX_CONNECTIONS = 50


def find_bindir() -> Path:
    """The newest installed PostgreSQL server binaries (FAILSAFE_PG_BINDIR overrides)."""
    override = os.environ.get("FAILSAFE_PG_BINDIR")
    if override:
        return Path(override)
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/postgres"),
        key=lambda p: int(Path(p).parent.parent.name),
    )
    if not candidates:
        raise LabError(
            "no PostgreSQL server found under /usr/lib/postgresql: install postgresql-15 "
            "(make lab-deps does it when run as root) or set FAILSAFE_PG_BINDIR"
        )
    return Path(candidates[-1]).parent


def synchronous_lab() -> bool:
    """FAILSAFE_LAB_PG_SYNCHRONOUS=1: the pair starts in synchronous mode (the primary names its
    standby in synchronous_standby_names) and the inventory says so (failsafe_pg_synchronous).
    The default is asynchronous."""
    return os.environ.get("FAILSAFE_LAB_PG_SYNCHRONOUS", "").lower() in ("1", "true", "yes", "on")


def slot_name(site: str) -> str:
    return site.replace("-", "_")


def replicated_pair(lab) -> list["PostgresNode"]:
    """The lab's cluster: the primary in the first region, a standby of it in every other."""
    primary, *others = PostgresNode.in_each_region(lab)
    for standby in others:
        standby.upstream = primary
    return [primary, *others]


class PostgresNode(Component):
    """One PostgreSQL server; `upstream` makes it a standby of that node at creation."""

    kind = "postgresql"
    default_ports = {"pg": 15432}
    packages = (DebianPackage("postgresql-15", path="/usr/lib/postgresql/*/bin/pg_rewind"),)
    secrets = (ADMIN_PASSWORD, REPLICATION_PASSWORD)
    inventory_groups: tuple[str, ...] = ("postgresql",)
    replicated = True  # a member of the replicated cluster: slots, WAL archive, replication role

    def __init__(self, lab, site: str, instance: int = 0,
                 upstream: "PostgresNode | None" = None) -> None:
        super().__init__(lab, site, instance)
        self.upstream = upstream

    # Paths -----------------------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def config_dir(self) -> Path:
        return self.home / "conf"

    @property
    def socket_dir(self) -> Path:
        return self.home / "socket"

    @property
    def log_file(self) -> Path:
        return self.home / "log" / "postgresql.log"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "postmaster.pid"

    @property
    def tls_cert(self) -> Path:
        return self.config_dir / "server.crt"

    @property
    def tls_key(self) -> Path:
        return self.config_dir / "server.key"

    @property
    def archive_dir(self) -> Path:
        return self.lab.config.state_dir / "wal_archive"

    def data_dirs(self) -> list[Path]:
        return [self.home, self.archive_dir] if self.replicated else [self.home]

    @property
    def bindir(self) -> Path:
        return find_bindir()

    def bin(self, name: str) -> str:
        return str(self.bindir / name)

    @property
    def ca_cert(self) -> Path:
        return self.lab.ca.cert_path

    @property
    def verify_server(self) -> str:
        """libpq options that verify this lab's servers."""
        return f"sslmode=verify-full sslrootcert={self.ca_cert}"

    def conninfo(self, dbname: str = "postgres") -> str:
        return (f"host={self.host} port={self.port} user={ADMIN_USER} "
                f"password={ADMIN_PASSWORD} dbname={dbname} connect_timeout=3 "
                f"{self.verify_server}")

    # Life cycle ------------------------------------------------------------------------------
    def postmaster_pid(self) -> int | None:
        return self.pid()

    def up(self) -> None:
        runner = self.lab.runner
        for path in (self.home, self.config_dir, self.socket_dir, self.log_file.parent):
            runner.make_dir(path)
        if self.replicated:
            runner.make_dir(self.archive_dir)
        if not self.tls_key.exists():
            self.lab.ca.issue(self.name, self.host, self.tls_cert, self.tls_key)
        self.write_config()
        created_standby = False
        if not (self.data_dir / "PG_VERSION").exists():
            if self.upstream is None:
                self.init_primary()
            else:
                self.clone_from(self.upstream)
                created_standby = True
        self.start()
        if self.replicated and self.upstream is None:
            self.bootstrap_roles()
        if created_standby:
            self.wait_streaming()
            if synchronous_lab():
                self.name_in_upstream()

    def name_in_upstream(self) -> None:
        """Synchronous mode: the upstream waits for this standby on every commit."""
        import psycopg

        with psycopg.connect(self.upstream.conninfo(), autocommit=True) as conn:
            conn.execute(f"ALTER SYSTEM SET synchronous_standby_names = "
                         f"'ANY 1 ({self.slot_name})'")
            conn.execute("SELECT pg_reload_conf()")

    def write_config(self) -> None:
        runner = self.lab.runner
        archive = f"""archive_mode = on
archive_command = 'test ! -f {self.archive_dir}/%f && cp %p {self.archive_dir}/%f'
""" if self.replicated else ""
        conf = f"""# Written by the failsafe lab for {self.name}; node-local, outside the data directory.
data_directory = '{self.data_dir}'
hba_file = '{self.config_dir / "pg_hba.conf"}'
ident_file = '{self.config_dir / "pg_ident.conf"}'
listen_addresses = '{self.host}'
port = {self.port}
unix_socket_directories = '{self.socket_dir}'
ssl = on
ssl_cert_file = '{self.tls_cert}'
ssl_key_file = '{self.tls_key}'
max_connections = {MAX_CONNECTIONS}
shared_buffers = 64MB
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
wal_keep_size = 256MB
wal_log_hints = on
hot_standby = on
hot_standby_feedback = on
{archive}# No restore_command: standbys stream through slots, and a restore_command costs every
# promotion ~0.1 s while the startup process probes the archive (docs/field-notes.md).
checkpoint_timeout = 5min
# Who ran a statement (application name, user), for tests that turn log_statement on.
log_line_prefix = '%m [%p] {self.site} app=%a user=%u '
"""
        hba = """# TYPE  DATABASE     USER  ADDRESS        METHOD
local   all          all                  trust
local   replication  all                  trust
hostssl all          all   127.0.0.0/8    scram-sha-256
hostssl replication  all   127.0.0.0/8    scram-sha-256
"""
        runner.write_file(self.config_dir / "postgresql.conf", conf)
        runner.write_file(self.config_dir / "pg_hba.conf", hba)
        runner.write_file(self.config_dir / "pg_ident.conf", "")

    def init_primary(self) -> None:
        runner = self.lab.runner
        pwfile = self.home / "initdb.pw"
        runner.write_file(pwfile, ADMIN_PASSWORD + "\n")
        try:
            runner.run([self.bin("initdb"), "-D", str(self.data_dir), "-U", ADMIN_USER,
                        f"--pwfile={pwfile}", "--auth-local=trust",
                        "--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C"])
        finally:
            pwfile.unlink(missing_ok=True)
        # initdb writes a postgresql.conf into the data directory; the node-local one rules.
        for name in ("postgresql.conf", "pg_hba.conf", "pg_ident.conf"):
            (self.data_dir / name).unlink(missing_ok=True)

    def clone_from(self, upstream: "PostgresNode") -> None:
        """A physical standby of `upstream`, with its own replication slot there."""
        runner = self.lab.runner
        passfile = self.home / "pgpass"
        runner.write_file(
            passfile, f"*:*:*:{REPLICATION_USER}:{REPLICATION_PASSWORD}\n"
        )
        runner.run(
            [self.bin("pg_basebackup"), "-D", str(self.data_dir), "-h", upstream.host,
             "-p", str(upstream.port), "-U", REPLICATION_USER, "-X", "stream",
             "-S", self.slot_name, "-C", "-R", "-c", "fast", "--no-password"],
            env={"PGPASSFILE": str(passfile), "PGAPPNAME": self.slot_name,
                 "PGSSLMODE": "verify-full", "PGSSLROOTCERT": str(self.ca_cert)},
            timeout=600,
        )
        # -R writes primary_conninfo without a password (it came from the passfile): give the
        # standby the password and its application name so pg_stat_replication names it.
        auto = self.data_dir / "postgresql.auto.conf"
        lines = [ln for ln in auto.read_text().splitlines() if not ln.startswith("primary_conninfo")]
        lines.append(
            "primary_conninfo = 'host={h} port={p} user={u} password={pw} application_name={a} {v}'"
            .format(h=upstream.host, p=upstream.port, u=REPLICATION_USER,
                    pw=REPLICATION_PASSWORD, a=self.slot_name, v=self.verify_server)
        )
        runner.write_file(auto, "\n".join(lines) + "\n")
        passfile.unlink(missing_ok=True)

    def start(self) -> None:
        runner = self.lab.runner
        # A postmaster killed a moment ago (kill -9, as an emergency drill does) is a zombie
        # whose backends still exit: PostgreSQL refuses to start until they are gone (~1 s).
        deadline = time.monotonic() + 20
        while True:
            proc = runner.run(
                [self.bin("pg_ctl"), "-D", str(self.config_dir), "-l", str(self.log_file),
                 "-w", "-t", "60", "start"],
                check=False, timeout=90,
            )
            if (proc.returncode == 0 or "another server might be running" not in proc.stderr
                    or time.monotonic() > deadline):
                break
            time.sleep(0.5)
        if proc.returncode != 0:
            raise LabError(f"{self.name} did not start: {proc.stderr.strip()}; see {self.log_file}")

    def bootstrap_roles(self) -> None:
        """The replication role, and a slot for every standby of this primary."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            if conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
                return
            exists = conn.execute(
                "SELECT 1 FROM pg_roles WHERE rolname = %s", (REPLICATION_USER,)
            ).fetchone()
            if not exists:
                conn.execute(
                    sql.SQL("CREATE ROLE {} WITH LOGIN REPLICATION PASSWORD {}").format(
                        sql.Identifier(REPLICATION_USER), sql.Literal(REPLICATION_PASSWORD)
                    )
                )

    def down(self, immediate: bool = False) -> None:
        pid = self.pid()
        if pid is None:
            return
        if self.data_dir.exists():
            self.lab.runner.run(
                [self.bin("pg_ctl"), "-D", str(self.config_dir), "-m",
                 "immediate" if immediate else "fast", "-w", "-t", "20", "stop"],
                check=False, timeout=30,
            )
        stop_process(pid, self.stop_signal, self.stop_grace)

    # Status ----------------------------------------------------------------------------------
    def describe(self) -> dict:
        import psycopg

        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            if not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
                standbys = dict(conn.execute(
                    "SELECT application_name, pg_wal_lsn_diff(pg_current_wal_lsn(), "
                    "replay_lsn)::bigint FROM pg_stat_replication").fetchall())
                detail = ", ".join(f"{name} lag {lag} B" for name, lag in standbys.items())
                return {"role": "primary", "standbys": standbys,
                        "detail": f"standbys: {detail or 'none'}" if self.replicated
                        else "standalone"}
            info = {"role": "standby", "upstream": None, "receiver": None}
            row = conn.execute(
                "SELECT sender_host, sender_port, status FROM pg_stat_wal_receiver").fetchone()
            if row:
                info["upstream"] = f"{row[0]}:{row[1]}"
                info["receiver"] = row[2]
            lag = conn.execute(
                "SELECT pg_wal_lsn_diff(pg_last_wal_receive_lsn(), "
                "pg_last_wal_replay_lsn())::bigint").fetchone()[0]
            info["lag_bytes"] = max(lag, 0) if lag is not None else None
            info["detail"] = (f"upstream {info['upstream']} ({info['receiver']}), "
                              f"replay lag {info['lag_bytes']} B")
            return info

    # Inventory -------------------------------------------------------------------------------
    @property
    def slot_name(self) -> str:
        return slot_name(self.site)

    def inventory_host(self) -> InventoryHost:
        host_vars = {
            "failsafe_pg_host": self.host,
            "failsafe_pg_port": self.port,
            "failsafe_pg_data_dir": str(self.data_dir),
            "failsafe_pg_config_dir": str(self.config_dir),
            "failsafe_pg_log_file": str(self.log_file),
        }
        if self.replicated:
            host_vars["failsafe_pg_slot_name"] = self.slot_name
        return InventoryHost(f"pg-{self.site}", host_vars, self.inventory_groups)

    def inventory_vars(self) -> dict:
        # Lab-only secrets of servers bound to loopback; production uses vault.
        return {
            "failsafe_pg_user": ADMIN_USER,
            "failsafe_pg_password": ADMIN_PASSWORD,
            "failsafe_pg_replication_user": REPLICATION_USER,
            "failsafe_pg_replication_password": REPLICATION_PASSWORD,
            "failsafe_pg_ssl_mode": "verify-full",
            "failsafe_pg_ca_cert": str(self.ca_cert),
            **({"failsafe_pg_synchronous": True} if synchronous_lab() and self.replicated
               else {}),
        }

    def wait_streaming(self, timeout: float = 30) -> None:
        """Blocks until this standby's WAL receiver streams (used by lab up and tests)."""
        import psycopg

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with psycopg.connect(self.conninfo(), autocommit=True) as conn:
                    row = conn.execute("SELECT status FROM pg_stat_wal_receiver").fetchone()
                    if row and row[0] == "streaming":
                        return
            except psycopg.Error:
                pass
            time.sleep(0.1)
        raise LabError(f"{self.name} is not streaming after {timeout}s; see {self.log_file}")


class PostgresWitness(PostgresNode):
    """A standalone PostgreSQL primary on a site of its own (e.g. the run-lock store): its own
    cluster, no standby, no WAL archive; inventory group `witness`, never `postgresql` (the
    replicated cluster the playbooks act on). Same admin credentials as the cluster."""

    kind = "postgresql_witness"
    inventory_groups = ("witness",)
    replicated = False

    @property
    def name(self) -> str:
        return f"postgresql-{self.site}"

    def inventory_vars(self) -> dict:
        # The run lock lives here, reachable from every controller (AWX nodes).
        return {**super().inventory_vars(),
                "failsafe_lock_backend": "postgresql",
                "failsafe_lock_host": f"pg-{self.site}"}
