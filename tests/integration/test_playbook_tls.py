"""TLS is never downgraded: the playbooks verify the servers (ssl_mode verify-full), proven from
the servers' side, and a wrong CA makes each of them fail clearly with nothing changed.

The test lab's inventory sets failsafe_pg_ssl_mode=verify-full and failsafe_pg_ca_cert (the lab's
own CA). Each test turns log_connections on for both nodes; every TCP session the server
authorised is then logged as `connection authorized: ... application_name=... SSL enabled (...)`
(replication sessions likewise), so a session a module opened without TLS would show up as an
authorised line without "SSL enabled". The lab's pg_hba.conf accepts TCP only over TLS (hostssl),
so the log is the proof that matters: the modules asked for TLS and verified the certificate.

The wrong-CA runs keep the run lock in a file (extravars), so that the CA given to the
PostgreSQL nodes is the only thing that differs from a good run.
"""

from __future__ import annotations

import re

import pytest
from test_playbook_postgresql import PROMOTE_TASK, failures, task_results

STATUS = "playbooks/status.yml"
SWITCHOVER = "playbooks/postgresql_switchover.yml"
FAILOVER = "playbooks/postgresql_failover.yml"
REJOIN = "playbooks/postgresql_rejoin.yml"
LOSS_BUDGET = {"postgresql_failover_max_data_loss_seconds": 60}
REJOIN_EAST = {"postgresql_rejoin_node": "pg-us-east", "postgresql_rejoin_primary": "pg-us-west"}

_LINE = re.compile(r"^\S+ \S+ \S+ \[(?P<pid>\d+)\] (?P<rest>.*)$")
_RECEIVED = re.compile(r"connection received: host=(?P<host>\S+)")
_AUTHORIZED = re.compile(r"(?P<replication>replication )?connection authorized: user=(?P<user>\S+)"
                         r"(?: database=\S+)?(?: application_name=(?P<app>\S+))?(?P<rest>.*)")


class ConnectionLog:
    """The sessions the two nodes authorised since the fixture started (log_connections)."""

    def __init__(self, pair):
        self.pair = pair
        self.nodes = (pair.east, pair.west)
        self.offsets = {}

    def mark(self):
        self.offsets = {node.region: self.pair.log_offset(node) for node in self.nodes}

    def sessions(self, node):
        """[{pid, host, user, app, replication, ssl}] of the TCP and socket sessions on node."""
        received, found = {}, []
        for line in self.pair.log_since(node, self.offsets[node.region]).splitlines():
            match = _LINE.match(line)
            if not match:
                continue
            pid, rest = match["pid"], match["rest"]
            got = _RECEIVED.search(rest)
            if got:
                received[pid] = got["host"]
                continue
            auth = _AUTHORIZED.search(rest)
            if auth:
                found.append(dict(pid=pid, host=received.get(pid), user=auth["user"],
                                  app=auth["app"], replication=bool(auth["replication"]),
                                  ssl="SSL enabled" in auth["rest"]))
        return found

    def all_sessions(self):
        return [dict(session, node=node.region) for node in self.nodes
                for session in self.sessions(node)]

    def assert_all_tls(self, *apps):
        """Every TCP session was TLS, and each of `apps` (application_name) opened one."""
        sessions = self.all_sessions()
        tcp = [s for s in sessions if s["host"] != "[local]"]
        plain = [s for s in tcp if not s["ssl"]]
        assert not plain, f"sessions without TLS: {plain}"
        for app in apps:
            assert any(s["app"] == app for s in tcp), \
                f"no session of {app} was logged: {sorted({s['app'] or '' for s in tcp})}"
        return sessions


@pytest.fixture
def connection_log(pg_pair):
    """log_connections on both nodes; reset afterwards on those that still run."""
    log = ConnectionLog(pg_pair)
    for node in log.nodes:
        pg_pair.set_setting(node, "log_connections", "on")
    log.mark()
    try:
        yield log
    finally:
        for node in log.nodes:
            try:
                pg_pair.set_setting(node, "log_connections", None)
            except Exception:  # a test may leave a node stopped: pg_pair resets it next time
                pass


def wrong_ca_vars(pair, tmp_path, **extra):
    """The inventory as it is, but a CA that signed neither server; the lock in a file."""
    return dict(failsafe_pg_ca_cert=pair.wrong_ca, failsafe_lock_backend="file",
                failsafe_lock_path=str(tmp_path / "locks"), **extra)


def assert_certificate_failure(runner):
    """The run failed, saying it is the certificate, without a traceback."""
    assert runner.status == "failed", runner.stdout_text
    # A loop's own failure says "One or more items failed": the items say why.
    items = [e["event_data"]["res"] for e in runner.events
             if e.get("event") == "runner_item_on_failed"]
    messages = " ".join(str(f.get("msg", "")) for f in failures(runner) + items)
    assert "certificate verify failed" in messages, runner.stdout_text
    assert "Traceback" not in runner.stdout_text
    return messages


def assert_canonical(pair):
    """Nothing changed: us-east the writable primary, us-west streaming from it over TLS."""
    assert not pair.in_recovery(pair.east) and not pair.read_only(pair.east)
    assert pair.in_recovery(pair.west) and not pair.read_only(pair.west)
    assert pair.receiver(pair.west)["sender_host"] == pair.east.host
    assert pair.insert(pair.east, "still writable") > 0


def replication_over_tls(pair, primary, standby):
    """The standby's WAL receiver verifies the primary, and the primary sees its walsender
    session encrypted (pg_stat_ssl joined with pg_stat_replication)."""
    conninfo = pair.scalar(standby, "SELECT conninfo FROM pg_stat_wal_receiver")
    assert "sslmode=verify-full" in conninfo, conninfo
    ssl = pair.query(primary, "SELECT r.application_name, s.ssl, s.version FROM "
                              "pg_stat_replication r JOIN pg_stat_ssl s USING (pid)")
    assert ssl and all(row[1] for row in ssl), ssl
    assert standby.slot_name in [row[0] for row in ssl], ssl


# verify-full, proven by the servers ---------------------------------------------------------

def test_status_reads_the_topology_over_verified_tls(pg_pair, run_playbook, connection_log):
    runner = run_playbook(STATUS)
    assert runner.status == "successful", runner.stdout_text
    # The topology is read by postgresql_nodes_info (every node in one call).
    connection_log.assert_all_tls("failsafe.nodes_info")


def test_switchover_and_its_rejoin_run_over_verified_tls(pg_pair, run_playbook, connection_log):
    runner = run_playbook(SWITCHOVER, limit="us-west")
    assert runner.status == "successful", runner.stdout_text
    sessions = connection_log.assert_all_tls("failsafe.nodes_info", "failsafe.switchover")
    # The rejoined old primary streams from the new one over TLS (replication sessions).
    assert any(s["replication"] and s["node"] == "us-west" for s in sessions), sessions
    replication_over_tls(pg_pair, pg_pair.west, pg_pair.east)


def test_failover_and_its_rejoin_run_over_verified_tls(pg_pair, run_playbook, connection_log):
    pg_pair.crash(pg_pair.east)
    runner = run_playbook(FAILOVER, limit="us-west", extravars=LOSS_BUDGET)
    assert runner.status == "successful", runner.stdout_text
    connection_log.assert_all_tls("failsafe.failover")
    replication_over_tls(pg_pair, pg_pair.west, pg_pair.east)


def test_rejoin_runs_over_verified_tls(pg_pair, run_playbook, connection_log):
    pg_pair.manual_switchover()
    connection_log.mark()
    runner = run_playbook(REJOIN, extravars=REJOIN_EAST)
    assert runner.status == "successful", runner.stdout_text
    connection_log.assert_all_tls("failsafe.replication_info")
    replication_over_tls(pg_pair, pg_pair.west, pg_pair.east)


# A wrong CA: a clear failure, nothing changed --------------------------------------------------

def test_status_with_a_wrong_ca_names_the_certificate_problem(pg_pair, run_playbook, tmp_path):
    runner = run_playbook(STATUS, extravars=wrong_ca_vars(pg_pair, tmp_path))
    assert_certificate_failure(runner)
    assert_canonical(pg_pair)


def test_switchover_with_a_wrong_ca_fails_clearly(pg_pair, run_playbook, tmp_path):
    runner = run_playbook(SWITCHOVER, limit="us-west",
                          extravars=wrong_ca_vars(pg_pair, tmp_path))
    messages = assert_certificate_failure(runner)
    assert "nothing was changed" in messages.lower()
    assert_canonical(pg_pair)


def test_failover_with_a_wrong_ca_fails_clearly(pg_pair, run_playbook, tmp_path):
    runner = run_playbook(FAILOVER, limit="us-west",
                          extravars=wrong_ca_vars(pg_pair, tmp_path, **LOSS_BUDGET))
    messages = assert_certificate_failure(runner)
    assert "nothing was changed" in messages.lower()
    assert all(not r.get("promoted") for r in task_results(runner, PROMOTE_TASK))
    assert_canonical(pg_pair)


def test_rejoin_with_a_wrong_ca_fails_clearly(pg_pair, run_playbook, tmp_path):
    pg_pair.manual_switchover()
    runner = run_playbook(REJOIN, extravars=wrong_ca_vars(pg_pair, tmp_path, **REJOIN_EAST))
    messages = assert_certificate_failure(runner)
    assert "nothing was changed" in messages.lower()
    # us-east is still the fenced old primary, us-west the primary: the rejoin changed nothing.
    assert not pg_pair.in_recovery(pg_pair.east) and pg_pair.read_only(pg_pair.east)
    assert not pg_pair.in_recovery(pg_pair.west)
