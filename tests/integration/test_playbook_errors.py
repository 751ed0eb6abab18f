"""Errors after the connection, through the playbook an operator runs (test_module_errors.py has
the same cases at the module level): the message that reaches the operator says what failed, on
which node and the state left, and no traceback appears anywhere in the run.

The runs keep the run lock in a file (extravars): the login role given to the PostgreSQL nodes
exists on the pair only, not on the witness that holds the lab's lock.
"""

from __future__ import annotations

import time

import pytest
from during_run import WhenThen, backends, fast_shutdown, terminate
from psycopg import sql
from test_playbook_postgresql import SWITCH_TASK, failures, task_results

SWITCHOVER = "playbooks/postgresql_switchover.yml"
CATCHUP_20S = dict(postgresql_switchover_catchup_timeout=20)
LIMITED_USER = "failsafe_limited_pb"
LIMITED_PASSWORD = "limited-pb-Pa55word"


def file_lock(tmp_path, **extra):
    return dict(failsafe_lock_backend="file", failsafe_lock_path=str(tmp_path / "locks"), **extra)


def failure_text(runner):
    """The failure messages of the run (items included), and no traceback anywhere."""
    items = [e["event_data"]["res"] for e in runner.events
             if e.get("event") == "runner_item_on_failed"]
    assert "Traceback" not in runner.stdout_text
    return " ".join(str(f.get("msg", "")) for f in failures(runner) + items)


@pytest.fixture(params=["plain", "pg_monitor"])
def limited_login(request, pg_pair):
    """A login role without superuser on the pair (plain, or with pg_monitor: it reads
    everything, but may not fence), as inventory variables."""
    pg_pair.query(pg_pair.east, sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
        sql.Identifier(LIMITED_USER), sql.Literal(LIMITED_PASSWORD)))
    if request.param == "pg_monitor":
        pg_pair.query(pg_pair.east, sql.SQL("GRANT pg_monitor TO {}").format(
            sql.Identifier(LIMITED_USER)))
    pg_pair.wait_replayed()
    try:
        yield request.param, dict(failsafe_pg_user=LIMITED_USER,
                                  failsafe_pg_password=LIMITED_PASSWORD)
    finally:
        if not pg_pair.in_recovery(pg_pair.east):
            pg_pair.query(pg_pair.east, sql.SQL("DROP ROLE IF EXISTS {}").format(
                sql.Identifier(LIMITED_USER)))


def test_switchover_as_a_role_without_the_privilege_fails_clearly(
        pg_pair, run_playbook, limited_login, tmp_path):
    east, west = pg_pair.east, pg_pair.west
    kind, login = limited_login
    runner = run_playbook(SWITCHOVER, limit="us-west", extravars=file_lock(tmp_path, **login))
    assert runner.status == "failed", runner.stdout_text
    text = failure_text(runner)
    if kind == "plain":
        # The standby's WAL receiver is hidden from it: said as such, not "not streaming".
        assert "cannot tell whether %s streams: the role %s may not read " \
               "pg_stat_wal_receiver" % (west.address, LIMITED_USER) in text, text
        assert "Nothing was changed" in text, text
    else:
        assert "fencing the primary on %s failed: permission denied" % east.address in text, text
        assert "the role %s lacks this privilege; connect as a superuser" % LIMITED_USER \
            in text, text
        assert "was not left fenced" in text and "nothing was promoted" in text, text
    # Independent view: nothing changed.
    assert not pg_pair.in_recovery(east) and not pg_pair.read_only(east)
    assert pg_pair.in_recovery(west)
    assert pg_pair.insert(east, "still writable") > 0


def test_switchover_whose_sessions_are_terminated_leaves_a_writable_primary(
        pg_pair, run_playbook, tmp_path):
    """pg_terminate_backend on the module's sessions while the fenced primary waits for the
    standby: the run fails saying so, and the primary takes writes again."""
    east, west = pg_pair.east, pg_pair.west
    pg_pair.hold_back_replay()
    killer = WhenThen(lambda: pg_pair.read_only(east),
                      lambda: [terminate(pg_pair, node, "failsafe.switchover")
                               for node in (east, west)])
    killer.start()
    try:
        runner = run_playbook(SWITCHOVER, limit="us-west",
                              extravars=file_lock(tmp_path, **CATCHUP_20S))
    finally:
        killer.join(5)
        pg_pair.release_replay()
    assert killer.fired and killer.error is None, (killer.error, runner.stdout_text)
    assert runner.status == "failed", runner.stdout_text
    text = failure_text(runner)
    assert "another session terminated ours" in text or "lost the connection" in text, text
    assert "The primary %s was unfenced and takes writes again" % east.address in text, text
    switched = task_results(runner, SWITCH_TASK)
    assert switched and not switched[0].get("switched"), switched
    assert not pg_pair.read_only(east) and pg_pair.insert(east, "writable again") > 0
    assert pg_pair.in_recovery(west)


def test_switchover_whose_standby_stops_before_the_promotion_fails_clearly(
        pg_pair, run_playbook, tmp_path):
    """The standby passes every check, then stops (fast shutdown) while the switchover waits
    for it to catch up: the run names the standby and what state it left."""
    east, west = pg_pair.east, pg_pair.west
    pg_pair.hold_back_replay()
    stopper = WhenThen(lambda: pg_pair.read_only(east)
                       and backends(pg_pair, west, "failsafe.switchover") > 0,
                       lambda: (time.sleep(0.3), fast_shutdown(west)))
    stopper.start()
    try:
        runner = run_playbook(SWITCHOVER, limit="us-west",
                              extravars=file_lock(tmp_path, **CATCHUP_20S))
    finally:
        stopper.join(5)
    assert stopper.fired and stopper.error is None, (stopper.error, runner.stdout_text)
    assert runner.status == "failed", runner.stdout_text
    text = failure_text(runner)
    assert west.address in text, text
    assert "lost the connection" in text or "cannot reach" in text \
        or "another session terminated ours" in text, text
    assert "The primary %s was unfenced and takes writes again" % east.address in text, text
    # Independent view: us-east is still the primary and takes writes; nothing was promoted.
    assert not pg_pair.in_recovery(east) and not pg_pair.read_only(east)
    assert pg_pair.insert(east, "writable after the standby stopped") > 0
