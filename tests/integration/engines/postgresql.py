"""PostgreSQL in the integration tests: the replicated pair, the witness, their checks.

A pytest plugin (loaded by conftest.py, like every module of engines/).

pg_pair (function)
    Guarantees the canonical topology before the test (us-east writable, asynchronous primary
    on timeline 1, us-west standby streaming from it through slot us_west, nothing fenced, replay
    neither paused nor delayed, same system identifier); otherwise it resets the pair (~3 s).
    Creates the check table `failsafe_it` (ids unique across timelines). A `PgPair`:
      .east / .west   `PgNode`: host, port, user, password, data_dir, config_dir, log_file,
                      slot_name, ca_cert, address, .peer(**over) (the connection dict every
                      PostgreSQL module takes as node=, primary=, standby=), .conninfo(),
                      .postmaster_pid(); peer and conninfo verify the server against the lab's
                      CA (verify-full)
      verification    (each in a NEW session, independent of the modules) connect(node),
                      query, scalar, in_recovery, read_only (SHOW default_transaction_read_only),
                      receiver (pg_stat_wal_receiver), insert (returns id; raises when
                      read-only), wait_row, wait_replayed
      preconditions   (done with psycopg, not with the modules under test) fence, unfence,
                      set_setting (ALTER SYSTEM + reload, waits), pause_replay, resume_replay,
                      hold_back_replay / release_replay (recovery_min_apply_delay: lag without
                      pause), manual_switchover, crash (kill -9 the postmaster)
      TLS             .wrong_ca: a CA certificate that signed none of the lab's servers
      server log      log_offset(node) -> where the log ends now; log_since(node, offset) ->
                      what was logged after it (lines show `app=<application_name> user=<user>`;
                      turn statement logging on with set_setting(node, "log_statement", "all"))
    Every connection opened with .connect() is closed after the test. A test may leave the pair
    in any state: the next pg_pair resets it when needed.
pg_witness (function)
    The standalone witness server (kind postgresql_witness, inventory host pg-witness), started
    on first use: a `PgNode`.
lab_env helpers
    lab_env.pair() (a PgPair without the canonical guarantee; close it with .close_all()),
    lab_env.node(region) (the lab's PostgresNode component).
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from lab import postgresql as lab_pg
from lab.core import pid_alive
from lab.tls import write_ca

KINDS = (lab_pg.PostgresNode.kind,)
# The playbooks take their run lock on the witness server (the lab inventory's lock store).
PLAYBOOK_KINDS = KINDS + (lab_pg.PostgresWitness.kind,)
ADMIN_USER = lab_pg.ADMIN_USER
ADMIN_PASSWORD = lab_pg.ADMIN_PASSWORD

# A table the fixtures create on the primary for independent write checks. Its ids are unique
# across timelines (a sequence is not: a promoted standby and an old primary that kept writing
# hand out the same values), so a row id found on another node is the same row.
CHECK_TABLE = "failsafe_it"
CHECK_TABLE_DDL = (
    f"CREATE TABLE IF NOT EXISTS {CHECK_TABLE} ("
    " id bigint PRIMARY KEY DEFAULT"
    "  ((extract(epoch FROM clock_timestamp()) * 1000000)::bigint * 1000"
    "   + floor(random() * 1000)::bigint),"
    " note text,"
    " at timestamptz DEFAULT clock_timestamp())"
)


def node(env, region: str):
    """The lab's PostgresNode component of a region."""
    return env.lab.component(f"postgresql-{region}")


def canonical_problems(env) -> list[str]:
    """Why the pair is not canonical (empty when it is)."""
    east, west = node(env, "us-east"), node(env, "us-west")
    problems = []
    try:
        with psycopg.connect(east.conninfo(), autocommit=True) as conn:
            if conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
                problems.append("us-east is in recovery")
            if conn.execute("SHOW default_transaction_read_only").fetchone()[0] != "off":
                problems.append("us-east is fenced")
            sysid = conn.execute(
                "SELECT system_identifier FROM pg_control_system()").fetchone()[0]
            tli = conn.execute("SELECT timeline_id FROM pg_control_checkpoint()").fetchone()[0]
            if tli != 1:
                problems.append(f"us-east is on timeline {tli}")
            if conn.execute("SHOW synchronous_standby_names").fetchone()[0]:
                problems.append("us-east replicates synchronously")
            if conn.execute("SHOW max_connections").fetchone()[0] != str(lab_pg.MAX_CONNECTIONS):
                problems.append("us-east has another max_connections")
            slot = conn.execute("SELECT active FROM pg_replication_slots "
                                "WHERE slot_name = 'us_west'").fetchone()
            if not slot or not slot[0]:
                problems.append("slot us_west missing or inactive on us-east")
        with psycopg.connect(west.conninfo(), autocommit=True) as conn:
            if not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
                problems.append("us-west is not in recovery")
            else:
                if conn.execute("SELECT pg_get_wal_replay_pause_state()").fetchone()[0] \
                        != "not paused":
                    problems.append("replay paused on us-west")
                row = conn.execute("SELECT status, sender_host, sender_port "
                                   "FROM pg_stat_wal_receiver").fetchone()
                if not row or row[0] != "streaming" or row[1] != east.host \
                        or row[2] != east.port:
                    problems.append(f"us-west WAL receiver is {row}")
            if conn.execute("SHOW default_transaction_read_only").fetchone()[0] != "off":
                problems.append("us-west is fenced")
            if conn.execute("SHOW max_connections").fetchone()[0] != str(lab_pg.MAX_CONNECTIONS):
                problems.append("us-west has another max_connections")
            if conn.execute("SHOW recovery_min_apply_delay").fetchone()[0] not in ("0", "0ms"):
                problems.append("us-west has a recovery_min_apply_delay")
            if conn.execute("SELECT system_identifier FROM pg_control_system()"
                            ).fetchone()[0] != sysid:
                problems.append("us-west belongs to another cluster")
    except psycopg.Error as exc:
        problems.append(f"{exc.__class__.__name__}: {str(exc).strip()}")
    except Exception as exc:  # e.g. a node that does not run at all
        problems.append(repr(exc))
    return problems


@dataclass
class PgNode:
    """One lab server as the tests see it."""

    region: str
    host: str
    port: int
    data_dir: Path
    config_dir: Path
    log_file: Path
    slot_name: str
    component: object = field(repr=False)
    user: str = ADMIN_USER
    password: str = ADMIN_PASSWORD
    ca_cert: str = ""  # the lab's CA: modules verify the server (ssl_mode verify-full)

    def peer(self, **overrides) -> dict:
        """Connection dict for a module's peer option (primary=, standby=)."""
        peer = dict(host=self.host, port=self.port, user=self.user, password=self.password,
                    connect_timeout=3, ssl_mode="verify-full", ca_cert=self.ca_cert)
        peer.update(overrides)
        return peer

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def conninfo(self, **extra) -> str:
        parts = dict(host=self.host, port=self.port, user=self.user, password=self.password,
                     dbname="postgres", connect_timeout=3, sslmode="verify-full",
                     sslrootcert=self.ca_cert)
        parts.update(extra)
        return " ".join(f"{k}={v}" for k, v in parts.items())

    def postmaster_pid(self):
        return self.component.postmaster_pid()

    @classmethod
    def of(cls, comp) -> "PgNode":
        """The tests' view of a lab PostgresNode."""
        return cls(region=comp.site, host=comp.host, port=comp.port, data_dir=comp.data_dir,
                   config_dir=comp.config_dir, log_file=comp.log_file,
                   slot_name=comp.slot_name, component=comp, ca_cert=str(comp.ca_cert))


class PgPair:
    """The canonical pair (us-east primary, us-west standby) and verification helpers."""

    def __init__(self, env) -> None:
        env.ensure_started(PLAYBOOK_KINDS)
        self.env = env
        self.east = PgNode.of(node(env, "us-east"))
        self.west = PgNode.of(node(env, "us-west"))
        self._conns: list = []

    # Connections
    def connect(self, node: PgNode, autocommit=True, **extra):
        """A new psycopg session (independent of any module); closed after the test."""
        conn = psycopg.connect(node.conninfo(**extra), autocommit=autocommit)
        self._conns.append(conn)
        return conn

    def query(self, node: PgNode, sql, params=None):
        """One statement in a new session; returns fetchall() (or None without rows)."""
        with psycopg.connect(node.conninfo(), autocommit=True) as conn:
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description else None

    def scalar(self, node: PgNode, sql, params=None):
        rows = self.query(node, sql, params)
        return rows[0][0] if rows else None

    @property
    def wrong_ca(self) -> str:
        """A CA certificate that signed none of the lab's servers (for TLS failure tests)."""
        path = self.env.workdir / "wrong-ca" / "ca.crt"
        if not path.exists():
            write_ca(path.parent, "failsafe wrong CA")
        return str(path)

    def log_offset(self, node: PgNode) -> int:
        """Where the node's server log ends now (give it to log_since)."""
        return node.log_file.stat().st_size

    def log_since(self, node: PgNode, offset: int) -> str:
        """What the node's server logged after `offset`."""
        with open(node.log_file, "rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    def close_all(self) -> None:
        for conn in self._conns:
            try:
                conn.close()
            except Exception:
                pass
        self._conns.clear()

    # State, read through new sessions
    def in_recovery(self, node: PgNode) -> bool:
        return self.scalar(node, "SELECT pg_is_in_recovery()")

    def read_only(self, node: PgNode) -> bool:
        """What a new session sees: SHOW default_transaction_read_only."""
        return self.scalar(node, "SHOW default_transaction_read_only") == "on"

    def receiver(self, node: PgNode):
        rows = self.query(node, "SELECT status, sender_host, sender_port, slot_name "
                                "FROM pg_stat_wal_receiver")
        return dict(zip(("status", "sender_host", "sender_port", "slot_name"), rows[0])) \
            if rows else None

    def insert(self, node: PgNode, note="check") -> int:
        """INSERT one row into the check table in a new session (raises if read-only)."""
        return self.scalar(node, f"INSERT INTO {CHECK_TABLE} (note) VALUES (%s) RETURNING id",
                           (note,))

    def wait_row(self, node: PgNode, row_id: int, timeout=10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.scalar(node, f"SELECT count(*) FROM {CHECK_TABLE} WHERE id = %s",
                               (row_id,)):
                    return True
            except psycopg.Error:
                pass
            time.sleep(0.05)
        return False

    def wait_replayed(self, timeout=10.0) -> None:
        """Wait until us-west has replayed us-east's current flushed WAL."""
        target = self.scalar(self.east, "SELECT pg_current_wal_flush_lsn()")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.scalar(self.west, "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn",
                           (str(target),)):
                return
            time.sleep(0.02)
        raise AssertionError(f"us-west did not replay {target} within {timeout}s")

    # Preconditions (done with psycopg, not with the modules under test)
    def fence(self, node: PgNode, on=True, timeout=10.0) -> None:
        """ALTER SYSTEM default_transaction_read_only, reload, wait until new sessions see it."""
        stmt = ("ALTER SYSTEM SET default_transaction_read_only = on" if on
                else "ALTER SYSTEM RESET default_transaction_read_only")
        with psycopg.connect(node.conninfo(), autocommit=True) as conn:
            conn.execute(stmt)
            conn.execute("SELECT pg_reload_conf()")
        deadline = time.monotonic() + timeout
        while self.read_only(node) != on:
            if time.monotonic() > deadline:
                raise AssertionError(f"{node.region}: fence={on} not in force after {timeout}s")
            time.sleep(0.01)

    def unfence(self, node: PgNode) -> None:
        self.fence(node, on=False)

    def set_setting(self, node: PgNode, name: str, value, timeout=5.0) -> None:
        """ALTER SYSTEM SET (value) or RESET (None) a setting, reload, wait until in force."""
        from psycopg import sql

        query = "SELECT setting FROM pg_settings WHERE name = %s"
        before = self.scalar(node, query, (name,))
        with psycopg.connect(node.conninfo(), autocommit=True) as conn:
            if value is None:
                conn.execute(sql.SQL("ALTER SYSTEM RESET {}").format(sql.Identifier(name)))
            else:
                conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(
                    sql.Identifier(name), sql.Literal(str(value))))
            conn.execute("SELECT pg_reload_conf()")
        # A new session sees the new value once the postmaster has reloaded and signalled its
        # children; the startup/walreceiver processes act on the signal a moment later.
        deadline = time.monotonic() + timeout
        while self.scalar(node, query, (name,)) == before and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)

    def hold_back_replay(self, attempts=20) -> int:
        """Make us-west stop short of us-east's next commits without pausing replay.

        Sets recovery_min_apply_delay = 1h on us-west (it holds back commit records only: the
        standby keeps receiving and is not 'paused'), then proves it holds: inserts a row on
        us-east and checks that us-west has not replayed it. Returns the held-back row's id.
        Undo with release_replay().
        """
        self.set_setting(self.west, "recovery_min_apply_delay", "1h")
        for _attempt in range(attempts):
            row_id = self.insert(self.east, "held back on us-west")
            lsn = str(self.scalar(self.east, "SELECT pg_current_wal_flush_lsn()"))
            deadline = time.monotonic() + 5
            while not self.scalar(self.west, "SELECT pg_last_wal_receive_lsn() >= %s::pg_lsn",
                                  (lsn,)) and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(0.2)
            if not self.scalar(self.west, f"SELECT count(*) FROM {CHECK_TABLE} WHERE id = %s",
                               (row_id,)):
                return row_id
        raise AssertionError("recovery_min_apply_delay did not take effect on us-west")

    def release_replay(self) -> None:
        """Undo hold_back_replay() and wait until us-west has caught up."""
        self.set_setting(self.west, "recovery_min_apply_delay", None)
        self.wait_replayed()

    def pause_replay(self, node: PgNode | None = None, timeout=10.0) -> None:
        node = node or self.west
        self.query(node, "SELECT pg_wal_replay_pause()")
        deadline = time.monotonic() + timeout
        while self.scalar(node, "SELECT pg_get_wal_replay_pause_state()") != "paused":
            if time.monotonic() > deadline:
                raise AssertionError("replay did not pause")
            time.sleep(0.01)

    def resume_replay(self, node: PgNode | None = None) -> None:
        self.query(node or self.west, "SELECT pg_wal_replay_resume()")

    def manual_switchover(self, timeout=30.0) -> None:
        """us-east -> us-west by hand (fence, catch up, promote, checkpoint); us-east stays fenced."""
        self.fence(self.east)
        self.wait_replayed(timeout)
        self.query(self.west, "SELECT pg_promote(wait => true, wait_seconds => 30)")
        if self.in_recovery(self.west):
            raise AssertionError("us-west did not leave recovery")
        self.query(self.west, "CHECKPOINT")

    def crash(self, node: PgNode, timeout=15.0) -> None:
        """kill -9 the postmaster, then wait for its children to notice and exit."""
        pid = node.postmaster_pid()
        assert pid, f"{node.region} is not running"
        children = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()
                    and _ppid(p) == pid]
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        for child in children:
            while pid_alive(child) and time.monotonic() < deadline:
                time.sleep(0.05)
            if pid_alive(child):
                os.kill(child, signal.SIGKILL)
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)


def _ppid(proc_dir: Path):
    try:
        return int((proc_dir / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


@pytest.fixture
def pg_pair(lab_env):
    """The canonical PostgreSQL pair, reset only when a previous test left it otherwise."""
    lab_env.ensure_started(PLAYBOOK_KINDS)
    lab_env.ensure_canonical()
    pair = PgPair(lab_env)
    pair.query(pair.east, CHECK_TABLE_DDL)
    pair.wait_replayed()
    try:
        yield pair
    finally:
        pair.close_all()


@pytest.fixture
def pg_witness(lab_env):
    """The standalone witness server (started on first use), as a PgNode."""
    lab_env.ensure_started([lab_pg.PostgresWitness.kind])
    return PgNode.of(lab_env.lab.of_kind(lab_pg.PostgresWitness.kind)[0])


class PostgresEngine:
    """What conftest.py's LabEnv needs to know about PostgreSQL (see its docstring)."""

    kinds = KINDS
    problems = staticmethod(canonical_problems)
    helpers = {"pair": PgPair, "node": node}


LAB_ENGINE = PostgresEngine()
