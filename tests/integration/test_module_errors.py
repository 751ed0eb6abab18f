"""Errors after the connection, for real: a role without the privilege, the module's own sessions
terminated by someone else, a server stopped between the checks and the promotion.

Each must fail with a message that says what failed, on which server and the state the cluster
was left in, never with a Python traceback; and the cluster must keep a writable primary.
"""

from __future__ import annotations

import time

import pytest
from during_run import WhenThen, assert_no_traceback, backends, fast_shutdown, terminate
from psycopg import sql

LIMITED_USER = "failsafe_limited"
LIMITED_PASSWORD = "limited-Pa55word"


@pytest.fixture
def limited_role(pg_pair):
    """A login role without superuser (created on us-east, replicated to us-west)."""
    pg_pair.query(pg_pair.east, sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
        sql.Identifier(LIMITED_USER), sql.Literal(LIMITED_PASSWORD)))
    pg_pair.wait_replayed()
    try:
        yield dict(user=LIMITED_USER, password=LIMITED_PASSWORD)
    finally:
        if not pg_pair.in_recovery(pg_pair.east):
            pg_pair.query(pg_pair.east, sql.SQL("DROP ROLE IF EXISTS {}").format(
                sql.Identifier(LIMITED_USER)))


# A role without the privilege -------------------------------------------------------------------

def test_fencing_without_the_privilege_says_so_and_changes_nothing(
        pg_pair, run_module, limited_role):
    east = pg_pair.east
    result = run_module("postgresql_read_only", dict(node=east.peer(**limited_role),
                                                     read_only=True))
    assert result.failed
    assert result.msg.startswith("fencing on %s failed: permission denied to set parameter "
                                 "\"default_transaction_read_only\"" % east.address), result.msg
    assert "the role failsafe_limited lacks this privilege; connect as a superuser" in result.msg
    assert result.msg.endswith("Now: %s is a writable primary." % east.address)
    assert_no_traceback(result)
    assert pg_pair.read_only(east) is False


def test_a_switchover_whose_fence_is_refused_keeps_the_primary_writable(
        pg_pair, run_module, limited_role):
    east, west = pg_pair.east, pg_pair.west
    result = run_module("postgresql_switchover", dict(primary=east.peer(**limited_role),
                                                      standby=west.peer()))
    assert result.failed
    assert "fencing the primary on %s failed: permission denied" % east.address in result.msg
    assert "was not left fenced" in result.msg and "nothing was promoted" in result.msg
    assert_no_traceback(result)
    assert pg_pair.read_only(east) is False and pg_pair.insert(east, "still writable") > 0
    assert pg_pair.in_recovery(west) is True


def test_a_promotion_without_the_privilege_says_what_each_server_is(pg_pair, run_module,
                                                                    limited_role):
    east, west = pg_pair.east, pg_pair.west
    pg_pair.fence(east)
    try:
        result = run_module("postgresql_promote", dict(node=west.peer(**limited_role),
                                                       primary=east.peer()))
    finally:
        pg_pair.unfence(east)
    assert result.failed
    assert "promoting on %s failed: permission denied for function pg_promote" % west.address \
        in result.msg
    assert "now: %s is a standby (in recovery)" % west.address in result.msg
    assert_no_traceback(result)
    assert pg_pair.in_recovery(west) is True


# The module's own session terminated --------------------------------------------------------------

def test_a_switchover_whose_sessions_are_terminated_unfences_through_a_new_one(
        pg_pair, run_module):
    """Someone runs pg_terminate_backend on the module's sessions while the fenced primary waits
    for the standby: the module must lift the fence through a new session before it fails."""
    east, west = pg_pair.east, pg_pair.west
    pg_pair.hold_back_replay()
    # us-east first: its session is idle then, the module notices when us-west's is gone.
    killer = WhenThen(lambda: pg_pair.read_only(east),
                      lambda: [terminate(pg_pair, node, "failsafe.switchover")
                               for node in (east, west)])
    killer.start()
    try:
        result = run_module("postgresql_switchover", dict(primary=east.peer(),
                                                          standby=west.peer(),
                                                          catchup_timeout=20))
    finally:
        killer.join(5)
        pg_pair.release_replay()
    assert killer.fired and killer.error is None
    assert result.failed
    assert "another session terminated ours" in result.msg or "lost the connection" in result.msg
    assert "The primary %s was unfenced and takes writes again" % east.address in result.msg, \
        result.msg
    assert "lifted the fence on %s again" % east.address in result["steps"]
    assert result["switched"] is False, "nothing was promoted: the run did not switch over"
    assert_no_traceback(result)
    assert pg_pair.read_only(east) is False and pg_pair.insert(east, "writable again") > 0
    assert pg_pair.in_recovery(west) is True


# A server stopped between the checks and the promotion ---------------------------------------------

def test_a_standby_stopped_before_its_promotion_fails_clearly(pg_pair, run_module):
    east, west = pg_pair.east, pg_pair.west
    pg_pair.hold_back_replay()
    pg_pair.fence(east)
    stopper = WhenThen(lambda: backends(pg_pair, west, "failsafe.promote") > 0,
                       lambda: (time.sleep(0.3), fast_shutdown(west)))
    stopper.start()
    try:
        result = run_module("postgresql_promote", dict(node=west.peer(), primary=east.peer(),
                                                       catchup_timeout=20))
    finally:
        stopper.join(5)
        pg_pair.unfence(east)
    assert stopper.fired and stopper.error is None
    assert result.failed
    assert result.msg.startswith("waiting for the standby to replay")
    assert "on %s failed" % west.address in result.msg
    assert "another session terminated ours" in result.msg or "lost the connection" in result.msg
    assert result.msg.endswith("Nothing was changed.")
    assert result["promoted"] is False
    assert_no_traceback(result)
    assert pg_pair.in_recovery(east) is False and pg_pair.read_only(east) is False
