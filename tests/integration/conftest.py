"""Integration tests against the real lab: fixtures shared by module and playbook tests.

The tests run a lab of their OWN, never the default one (/var/tmp/failsafe-lab, 127.0.1.1 and
127.0.2.1), which may be running for a demo. Before `lab.Lab()` is built this file sets:

    FAILSAFE_LAB_DIR      /var/tmp/failsafe-test-lab-<pid of pytest>
    FAILSAFE_LAB_REGIONS  us-east=127.0.3.1,us-west=127.0.4.1
    FAILSAFE_LAB_PORT_OFFSET  10000 + pid % 50, with FAILSAFE_LAB_PORT_SCAN=1 (free ports)

(override with FAILSAFE_TEST_LAB_DIR, FAILSAFE_TEST_LAB_REGIONS, FAILSAFE_TEST_LAB_PORT_OFFSET; the
plain FAILSAFE_LAB_* variables of your shell are ignored on purpose, so that a test run can never
tear down a demo lab).

Fixtures
--------
lab_env (session)
    Starts the test lab once and always stops it and removes its data (finaliser; atexit
    safeguard; SIGTERM turned into KeyboardInterrupt so that it stops the lab too; labs left
    by a pytest killed with SIGKILL are reaped at the next start). A `LabEnv`: `.lab`,
    `.config`, `.inventory` (lab.inventory rendered for the test lab: hosts pg-us-east and
    pg-us-west, groups us-east, us-west, aliases us_east, us_west, postgresql), `.localhost_inventory` (localhost only,
    for ad-hoc module runs), `.envvars` (environment for ansible-runner: ANSIBLE_CONFIG,
    ANSIBLE_COLLECTIONS_PATH=<repo>/collections, ANSIBLE_ROLES_PATH, PATH with the venv),
    `.node(region)`, `.pair()`, `.canonical_problems()`, `.ensure_canonical()`, `.reset()`.
pg_pair (function)
    Guarantees the canonical topology before the test (us-east writable primary on timeline
    1, us-west standby streaming from it through slot us_west, nothing fenced, replay neither
    paused nor delayed, same system identifier); otherwise it resets the lab (down + up, ~3 s).
    Creates the check table `failsafe_it` (ids unique across timelines). A `PgPair`:
      .east / .west   `PgNode`: host, port, user, password, data_dir, config_dir, log_file,
                      slot_name, address, .peer(**over) (module peer dict), .login(**over)
                      (flat login_* options), .conninfo(), .postmaster_pid()
      verification    (each in a NEW session, independent of the modules) connect(node),
                      query, scalar, in_recovery, read_only (SHOW default_transaction_read_only),
                      receiver (pg_stat_wal_receiver), insert (returns id; raises when
                      read-only), wait_row, wait_replayed
      preconditions   (done with psycopg, not with the modules under test) fence, unfence,
                      set_setting (ALTER SYSTEM + reload, waits), pause_replay, resume_replay,
                      hold_back_replay / release_replay (recovery_min_apply_delay: lag without
                      pause), manual_switchover, crash (kill -9 the postmaster)
    Every connection opened with .connect() is closed after the test. A test may leave the pair
    in any state: the next pg_pair resets it when needed.
run_module (session)
    `run_module(name, args, check=False, diff=False, verbosity=0)` runs
    `failsafe.datastores.<name>` on localhost (connection local, the venv's Python) through
    ansible-runner, with args as JSON (nested dicts work), and returns a `ModuleResult`: the
    module's result dict (event_data['res'] of runner_on_ok/runner_on_failed) with `.failed`,
    `.msg`, `.changed`, `.events`, `.stdout`, `.status`, `.rc`. The runner's artifacts (they
    hold the command line, passwords included) are deleted after each run.
run_playbook (session)
    `run_playbook(path, inventory=None, extravars=None, limit=None, check=False, diff=False,
    verbosity=0)` runs a playbook (path relative to the repository) with ansible-runner against
    the test lab's inventory; returns the Runner (.status, .rc, .events, .stdout_text).
closed_port (session)
    `closed_port(host='127.0.0.1')` -> a TCP port where nothing listens.
lab_secrets (session)
    The lab's passwords, which no output may contain.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
for _path in (str(REPO / "collections"), str(REPO)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

TEST_LAB_PREFIX = "/var/tmp/failsafe-test-lab-"
TEST_REGIONS = "us-east=127.0.3.1,us-west=127.0.4.1"
TEST_PORT_OFFSET = 10000


def _configure_test_lab_env():
    """Point FAILSAFE_LAB_* at the test lab (before any LabConfig.from_env())."""
    state_dir = os.environ.get("FAILSAFE_TEST_LAB_DIR") or f"{TEST_LAB_PREFIX}{os.getpid()}"
    regions = os.environ.get("FAILSAFE_TEST_LAB_REGIONS") or TEST_REGIONS
    # Scan from a pid-dependent offset, so that two sessions started at the same moment
    # (neither lab bound yet) are unlikely to pick the same ports.
    offset = os.environ.get("FAILSAFE_TEST_LAB_PORT_OFFSET") or str(TEST_PORT_OFFSET + os.getpid() % 50)
    os.environ["FAILSAFE_LAB_DIR"] = state_dir
    os.environ["FAILSAFE_LAB_REGIONS"] = regions
    os.environ["FAILSAFE_LAB_PORT_OFFSET"] = offset
    os.environ["FAILSAFE_LAB_PORT_SCAN"] = "1"


_configure_test_lab_env()

from lab import inventory as lab_inventory  # noqa: E402
from lab import postgresql as lab_pg  # noqa: E402
from lab.core import DEFAULT_REGIONS, LabConfig, LabError, default_state_dir, pid_alive  # noqa: E402
from lab.topology import make_lab  # noqa: E402

try:
    PG_BINDIR = lab_pg.find_bindir()
    SKIP_REASON = None
    if not (PG_BINDIR / "postgres").exists():
        SKIP_REASON = f"no PostgreSQL server binaries in {PG_BINDIR} (FAILSAFE_PG_BINDIR)"
except LabError as exc:
    PG_BINDIR = None
    SKIP_REASON = f"integration tests need PostgreSQL server binaries: {exc}"

if SKIP_REASON is None:
    import psycopg  # noqa: E402  (a runtime requirement of the collection)

ADMIN_USER = lab_pg.ADMIN_USER
ADMIN_PASSWORD = lab_pg.ADMIN_PASSWORD
REPLICATION_USER = lab_pg.REPLICATION_USER
REPLICATION_PASSWORD = lab_pg.REPLICATION_PASSWORD
LAB_SECRETS = (ADMIN_PASSWORD, REPLICATION_PASSWORD)

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
COLLECTION = "failsafe.datastores"


def pytest_collection_modifyitems(config, items):
    """Skip this whole directory, with the reason, where no PostgreSQL server is installed."""
    if SKIP_REASON is None:
        return
    marker = pytest.mark.skip(reason=SKIP_REASON)
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(marker)


def _closed_port(host="127.0.0.1"):
    """A TCP port on `host` where nothing listens (for 'unreachable server' tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def closed_port():
    """closed_port(host='127.0.0.1') -> a port where nothing listens."""
    return _closed_port


@pytest.fixture(scope="session")
def lab_secrets():
    """The lab's passwords: no output of a test run may contain them."""
    return LAB_SECRETS


# The lab -----------------------------------------------------------------------------------

def _reap_stale_test_labs():
    """Stop test labs left by a pytest that died (SIGKILL): only ours, only if its owner is dead."""
    for marker in Path("/var/tmp").glob("failsafe-test-lab-*/pytest-owner.json"):
        try:
            owner = json.loads(marker.read_text())
        except (OSError, ValueError):
            continue
        if pid_alive(int(owner.get("pid", 0))):
            continue
        state_dir = marker.parent
        try:
            make_lab(LabConfig.from_state_dir(state_dir)).down()
        except (OSError, ValueError, KeyError, LabError):
            shutil.rmtree(state_dir, ignore_errors=True)


class LabEnv:
    """The test lab of this pytest session and how to run Ansible against it."""

    def __init__(self, workdir: Path) -> None:
        self.config = LabConfig.from_env()
        if str(self.config.state_dir) == default_state_dir() \
                or set(self.config.regions.values()) & set(DEFAULT_REGIONS.values()):
            raise RuntimeError("refusing to run integration tests on the default lab "
                               f"({self.config.state_dir}, {self.config.regions})")
        self.lab = make_lab(self.config)
        self.workdir = workdir
        self.inventory = lab_inventory.write(self.lab, workdir / "inventory")
        self.localhost_inventory = workdir / "localhost.yml"
        self.localhost_inventory.write_text(
            "all:\n  hosts:\n    localhost:\n"
            "      ansible_connection: local\n"
            f"      ansible_python_interpreter: {sys.executable}\n")
        self.envvars = {
            "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
            "ANSIBLE_COLLECTIONS_PATH": str(REPO / "collections"),
            "ANSIBLE_ROLES_PATH": str(REPO / "roles"),
            "ANSIBLE_NOCOLOR": "1",
            "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
        }
        self.resets = 0
        self._stopped = True
        self._lock = threading.Lock()

    # Life cycle
    def start(self) -> None:
        self._stopped = False
        self.lab.up()
        self._mark_owner()

    def stop(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            self.lab.down()

    def reset(self) -> None:
        """Throw the lab away and start a fresh canonical one (~4 s)."""
        self.resets += 1
        try:
            self.lab.down()
        except LabError:
            pass
        self.lab.up()
        self._mark_owner()

    def _mark_owner(self) -> None:
        (self.config.state_dir / "pytest-owner.json").write_text(json.dumps({"pid": os.getpid()}))

    # Topology
    def node(self, region: str):
        """The lab's PostgresNode component of a region."""
        return self.lab.component(f"postgresql-{region}")

    def pair(self) -> "PgPair":
        """A PgPair for this lab (what pg_pair yields, without the canonical guarantee);
        close it with .close_all() when done."""
        return PgPair(self)

    def canonical_problems(self) -> list[str]:
        """Why the lab is not canonical (empty when it is)."""
        east, west = self.node("us-east"), self.node("us-west")
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

    def ensure_canonical(self) -> bool:
        """Reset the lab unless it is canonical; returns True if it had to reset."""
        problems = self.canonical_problems()
        if not problems:
            return False
        self.reset()
        problems = self.canonical_problems()
        if problems:
            raise LabError(f"the test lab is not canonical after a reset: {problems}")
        return True


_ACTIVE_LABS: list[LabEnv] = []


def _stop_active_labs() -> None:
    for env in list(_ACTIVE_LABS):
        try:
            env.stop()
        except Exception as exc:  # atexit: report, keep going
            print(f"failsafe test lab: stop failed: {exc}", file=sys.stderr)


atexit.register(_stop_active_labs)


def _install_sigterm_handler() -> None:
    """SIGTERM (CI timeouts, `kill`) would skip finalisers and atexit: make it a
    KeyboardInterrupt, which pytest turns into an orderly stop (the lab_env finaliser runs).
    SystemExit would not do: pytest reports it as one failed test and carries on."""
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)


@pytest.fixture(scope="session")
def lab_env(tmp_path_factory):
    """The session's own lab, started once and always stopped (its data removed)."""
    if SKIP_REASON:
        pytest.skip(SKIP_REASON)
    _reap_stale_test_labs()
    env = LabEnv(tmp_path_factory.mktemp("failsafe-lab"))
    _ACTIVE_LABS.append(env)
    _install_sigterm_handler()
    try:
        env.start()
        yield env
    finally:
        try:
            env.stop()
        finally:
            if env in _ACTIVE_LABS:
                _ACTIVE_LABS.remove(env)


# The pair ----------------------------------------------------------------------------------

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

    def login(self, **overrides) -> dict:
        """The flat login_* options of a module acting on this node."""
        login = dict(login_host=self.host, login_port=self.port, login_user=self.user,
                     login_password=self.password, connect_timeout=3,
                     ssl_mode="verify-full", ca_cert=self.ca_cert)
        login.update(overrides)
        return login

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


class PgPair:
    """The canonical pair (us-east primary, us-west standby) and verification helpers."""

    def __init__(self, env: LabEnv) -> None:
        self.env = env
        nodes = {}
        for region in ("us-east", "us-west"):
            comp = env.node(region)
            nodes[region] = PgNode(region=region, host=comp.host, port=comp.port,
                                   data_dir=comp.data_dir, config_dir=comp.config_dir,
                                   log_file=comp.log_file, slot_name=lab_pg.slot_name(region),
                                   component=comp, ca_cert=str(comp.ca_cert))
        self.east = nodes["us-east"]
        self.west = nodes["us-west"]
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
    lab_env.ensure_canonical()
    pair = lab_env.pair()
    pair.query(pair.east, CHECK_TABLE_DDL)
    pair.wait_replayed()
    try:
        yield pair
    finally:
        pair.close_all()


# Ansible -----------------------------------------------------------------------------------

class ModuleResult(dict):
    """The module's result (event_data['res']) plus the run around it."""

    def __init__(self, res, failed, status, rc, events, stdout):
        super().__init__(res)
        self.failed = failed
        self.status = status
        self.rc = rc
        self.events = events
        self.stdout = stdout

    @property
    def msg(self) -> str:
        return self.get("msg") or ""

    @property
    def changed(self) -> bool:
        return bool(self.get("changed"))

    def __repr__(self) -> str:
        return f"ModuleResult(failed={self.failed}, {dict.__repr__(self)})"


def _never_cancel() -> bool:
    """Our cancel_callback for ansible_runner.run.

    Without one, ansible_runner.run() replaces the process's SIGINT and SIGTERM handlers for
    good with handlers that only cancel the current run: Ctrl-C or a CI timeout would then no
    longer stop pytest (nor, therefore, the lab). With it, the signals keep raising
    KeyboardInterrupt / SystemExit and the lab_env finaliser stops the lab.
    """
    return False


def _run_module(env: LabEnv, base_dir: Path, name, args, check=False, diff=False, verbosity=0,
                timeout=300):
    import ansible_runner

    module = name if "." in name else f"{COLLECTION}.{name}"
    private = Path(tempfile.mkdtemp(prefix="runner-", dir=base_dir))
    cmdline = " ".join(flag for flag, on in (("--check", check), ("--diff", diff)) if on)
    try:
        runner = ansible_runner.run(
            private_data_dir=str(private),
            module=module,
            module_args=json.dumps(args),
            host_pattern="localhost",
            inventory=str(env.localhost_inventory),
            envvars=dict(env.envvars),
            cmdline=cmdline or None,
            verbosity=verbosity or None,
            quiet=True,
            timeout=timeout,
            cancel_callback=_never_cancel,
        )
        events = list(runner.events)
    finally:
        # The artifacts hold the command line, module arguments included: do not keep them.
        shutil.rmtree(private, ignore_errors=True)
    stdout = "\n".join(e.get("stdout", "") for e in events)
    for event in events:
        if event.get("event") in ("runner_on_ok", "runner_on_failed"):
            res = event["event_data"]["res"]
            failed = event["event"] == "runner_on_failed" or bool(res.get("failed"))
            return ModuleResult(res, failed, runner.status, runner.rc, events, stdout)
    raise AssertionError(f"{module} did not run (status {runner.status}, rc {runner.rc}):\n"
                         f"{stdout}")


@pytest.fixture(scope="session")
def run_module(lab_env, tmp_path_factory):
    """run_module(name, args, check=False, diff=False, verbosity=0) -> ModuleResult."""
    base = tmp_path_factory.mktemp("runner")

    def run(name, args, check=False, diff=False, verbosity=0, timeout=300):
        return _run_module(lab_env, base, name, args, check=check, diff=diff,
                           verbosity=verbosity, timeout=timeout)

    return run


@pytest.fixture(scope="session")
def run_playbook(lab_env, tmp_path_factory):
    """run_playbook(playbook, inventory=None, extravars=None, limit=None, check=False,
    diff=False, verbosity=0) -> ansible_runner Runner (with .events, .status, .rc).

    The playbook path is relative to the repository unless absolute; the inventory defaults to
    the rendered inventory of the test lab.
    """
    import ansible_runner

    base = tmp_path_factory.mktemp("playbooks")

    def run(playbook, inventory=None, extravars=None, limit=None, check=False, diff=False,
            verbosity=0, timeout=900):
        path = Path(playbook)
        if not path.is_absolute():
            path = REPO / path
        private = Path(tempfile.mkdtemp(prefix="runner-", dir=base))
        cmdline = " ".join(flag for flag, on in (("--check", check), ("--diff", diff)) if on)
        runner = ansible_runner.run(
            private_data_dir=str(private),
            playbook=str(path),
            inventory=str(inventory or lab_env.inventory),
            extravars=extravars or None,
            limit=limit,
            envvars=dict(lab_env.envvars),
            cmdline=cmdline or None,
            verbosity=verbosity or None,
            quiet=True,
            timeout=timeout,
            cancel_callback=_never_cancel,
        )
        runner.stdout_text = "\n".join(e.get("stdout", "") for e in runner.events)
        return runner

    return run
