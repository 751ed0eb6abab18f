"""Check mode runs no mutating statement: proven from the servers' own statement logs.

The test turns statement logging on for both lab nodes (log_statement = 'all', and a
log_line_prefix with %a so that each line names its session's application_name), runs every
state-changing module in check mode along its full path (every guard passes, the change is
planned), then reads what the servers logged for the modules' sessions (application_name
failsafe.*) and asserts that none of it changes anything. A check mode that fenced and
unfenced again, promoted, terminated a session or created a slot would be caught here.
"""

from __future__ import annotations

import re

import pytest

from lab.postgresql import REPLICATION_PASSWORD, REPLICATION_USER

# What must never reach a server in check mode.
MUTATING = re.compile(
    r"ALTER\s+SYSTEM|pg_reload_conf|pg_promote|pg_terminate_backend|pg_cancel_backend"
    r"|pg_create_\w*replication_slot|pg_drop_replication_slot|pg_wal_replay_(pause|resume)"
    r"|\bCHECKPOINT\b|\b(INSERT|UPDATE|DELETE|CREATE|DROP|TRUNCATE|GRANT|REVOKE)\b",
    re.IGNORECASE)
PREFIX = "%m [%p] app=%a "
OUR_SESSIONS = "app=failsafe."


@pytest.fixture
def statement_log(pg_pair):
    """Log every statement with its application_name on both nodes; reset afterwards."""
    nodes = (pg_pair.east, pg_pair.west)
    for node in nodes:
        pg_pair.set_setting(node, "log_line_prefix", PREFIX)
        pg_pair.set_setting(node, "log_statement", "all")
    offsets = dict((node.region, node.log_file.stat().st_size) for node in nodes)
    try:
        yield offsets
    finally:
        for node in nodes:
            pg_pair.set_setting(node, "log_statement", None)
            pg_pair.set_setting(node, "log_line_prefix", None)


def our_statements(node, offset):
    """The lines our modules' sessions logged on `node` since `offset` (with continuations)."""
    with open(node.log_file, "rb") as handle:
        handle.seek(offset)
        text = handle.read().decode("utf-8", "replace")
    kept, ours = [], False
    for line in text.splitlines():
        if line[:1] in ("\t", " "):  # a statement or detail continued
            if ours:
                kept[-1] += "\n" + line
            continue
        ours = OUR_SESSIONS in line
        if ours:
            kept.append(line)
    return kept


def test_check_mode_runs_no_mutating_statement(pg_pair, run_module, statement_log):
    east, west = pg_pair.east, pg_pair.west
    planned = {}
    # us-east writable: fencing and switching over are planned.
    planned["read_only"] = run_module("postgresql_read_only",
                                      dict(node=east.peer(), read_only=True), check=True)
    planned["switchover"] = run_module("postgresql_switchover",
                                       dict(primary=east.peer(), standby=west.peer()),
                                       check=True)
    planned["sync_replication"] = run_module("postgresql_sync_replication",
                                             dict(node=east.peer(), standby_names=["us_west"]),
                                             check=True)
    # Another slot than the one it streams through: a rejoin (and a slot) is planned.
    planned["standby"] = run_module("postgresql_standby", dict(
        node=west.peer(), primary=east.peer(), data_dir=str(west.data_dir),
        config_dir=str(west.config_dir), replication_user=REPLICATION_USER,
        replication_password=REPLICATION_PASSWORD, slot_name="check_mode_only"), check=True)
    # us-east fenced (by the test, not by a module): promotion and failover pass every guard.
    pg_pair.fence(east)
    try:
        planned["unfence"] = run_module("postgresql_read_only",
                                        dict(node=east.peer(), read_only=False), check=True)
        planned["promote"] = run_module("postgresql_promote",
                                        dict(node=west.peer(), primary=east.peer()), check=True)
        planned["failover"] = run_module("postgresql_failover", dict(
            nodes=[dict(east.peer(log_file=str(east.log_file)), name="pg-us-east"),
                   dict(west.peer(log_file=str(west.log_file)), name="pg-us-west")],
            candidates=["pg-us-west"], accept_data_loss=True), check=True)
        east_lines = our_statements(east, statement_log[east.region])
        west_lines = our_statements(west, statement_log[west.region])
    finally:
        pg_pair.unfence(east)

    mutating = [line for line in east_lines + west_lines if MUTATING.search(line)]
    assert mutating == [], "\n".join(mutating)

    # Not vacuous: every module took its full path (all guards passed, a change planned) and
    # its sessions were logged on the nodes it read.
    for name, result in planned.items():
        assert not result.failed, (name, result.msg)
        assert result.changed, (name, "the full path was not taken: nothing was planned")
        assert result["steps"], name
    assert planned["standby"]["method"] == "reconfigure"
    logged = "\n".join(east_lines + west_lines)
    for application in ("read_only", "switchover", "standby", "promote", "failover",
                        "sync_replication"):
        assert "app=failsafe.%s " % application in logged, application
    assert any("pg_is_in_recovery" in line for line in east_lines + west_lines)
    # Nothing changed, seen independently.
    assert pg_pair.in_recovery(west) is True
    assert pg_pair.scalar(east, "SHOW synchronous_standby_names") == ""
    assert pg_pair.scalar(east, "SELECT count(*) FROM pg_replication_slots "
                                "WHERE slot_name = 'check_mode_only'") == 0
