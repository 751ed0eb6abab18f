"""Synchronous replication across role swaps, through the playbooks (ansible-runner).

A switchover and an emergency failover (kill -9 of the primary's postmaster) in synchronous
mode: nothing acknowledged is lost, the new primary starts asynchronous (never blocked) and is
made synchronous again, naming the old primary, once that one streams. Checked with
independent psycopg sessions.
"""

from __future__ import annotations

import time

from lab.writer import Writer

SWITCHOVER = "playbooks/postgresql_switchover.yml"
FAILOVER = "playbooks/postgresql_failover.yml"
SWITCH_TASK = "Fence, catch up and promote in one call"
PROMOTE_TASK = "Check every node and promote the most advanced standby in one call"
SYNC_TASK = "Make the primary synchronous again, naming the node that streams from it now"


def task_results(runner, task_name):
    return [e["event_data"]["res"] for e in runner.events
            if e.get("event") in ("runner_on_ok", "runner_on_failed")
            and e["event_data"].get("task") == task_name]


def stats(runner):
    return next(e["event_data"] for e in runner.events if e.get("event") == "playbook_on_stats")


def make_synchronous(pair):
    """us-east waits for us-west on every commit (precondition, set with psycopg)."""
    pair.set_setting(pair.east, "synchronous_standby_names", "ANY 1 (us_west)")
    assert pair.scalar(pair.east, "SELECT sync_state FROM pg_stat_replication "
                                  "WHERE application_name = 'us_west'") == "quorum"


def writer_for(pair):
    return Writer([(pair.east.host, pair.east.port), (pair.west.host, pair.west.port)],
                  pair.east.user, pair.east.password, run_id=f"it-sync-{time.time()}")


def assert_west_synchronous_naming_east(pair):
    """us-west is the primary, waits for us-east, which streams: commits return."""
    assert not pair.in_recovery(pair.west)
    assert pair.scalar(pair.west, "SHOW synchronous_standby_names") == "ANY 1 (us_east)"
    assert pair.in_recovery(pair.east)
    assert pair.receiver(pair.east)["status"] == "streaming"
    assert pair.scalar(pair.west, "SELECT sync_state FROM pg_stat_replication "
                                  "WHERE application_name = 'us_east'") == "quorum"
    # The old primary's own setting was dropped when it became a standby.
    assert pair.scalar(pair.east, "SHOW synchronous_standby_names") == ""
    row = pair.insert(pair.west, "synchronous after the swap")
    assert pair.wait_row(pair.east, row)


def test_switchover_in_synchronous_mode(pg_pair, run_playbook):
    make_synchronous(pg_pair)
    writer = writer_for(pg_pair)
    writer.start()
    try:
        runner = run_playbook(SWITCHOVER, limit="us-west")
        time.sleep(0.5)
    finally:
        writer.stop()
    assert runner.status == "successful", runner.stdout_text
    report = writer.verify()
    assert report.acknowledged > 0
    assert report.lost == 0, report.missing_ids

    switched = task_results(runner, SWITCH_TASK)[0]
    assert switched["switched"]
    sync = switched["synchronous"]
    assert sync["old_primary_setting"] == "ANY 1 (us_west)"
    assert sync["new_primary_setting"] == ""
    assert sync["state"] == "degraded_async"
    assert sync["restore"] == {"method": "any", "num_sync": 1}
    restored = task_results(runner, SYNC_TASK)[0]
    assert restored["changed"] and restored["blocked"] is False
    assert restored["synchronous_standby_names"] == "ANY 1 (us_east)"
    record = stats(runner)["artifact_data"]["failsafe_postgresql_switchover"]
    assert record["synchronous_state"] == "synchronous"
    assert_west_synchronous_naming_east(pg_pair)


def test_switchover_with_synchronous_off_leaves_the_new_primary_asynchronous(
        pg_pair, run_playbook):
    make_synchronous(pg_pair)
    runner = run_playbook(SWITCHOVER, limit="us-west",
                          extravars={"postgresql_switchover_synchronous": "off"})
    assert runner.status == "successful", runner.stdout_text
    assert task_results(runner, SWITCH_TASK)[0]["synchronous"]["state"] == "async"
    assert task_results(runner, SYNC_TASK) == []
    assert pg_pair.scalar(pg_pair.west, "SHOW synchronous_standby_names") == ""
    assert pg_pair.insert(pg_pair.west, "asynchronous") > 0


def test_emergency_failover_in_synchronous_mode_loses_no_acknowledged_row(
        pg_pair, run_playbook):
    make_synchronous(pg_pair)
    # A stale copy on the standby (as a base backup of a synchronous primary leaves it) must
    # not block the promoted node.
    pg_pair.set_setting(pg_pair.west, "synchronous_standby_names", "ANY 1 (us_west)")
    writer = writer_for(pg_pair)
    writer.start()
    try:
        time.sleep(1.0)
        pg_pair.crash(pg_pair.east)
        runner = run_playbook(FAILOVER, limit="us-west",
                              extravars={"postgresql_failover_max_data_loss_seconds": 60,
                                         "postgresql_failover_synchronous": "on"})
        time.sleep(0.5)
    finally:
        writer.stop()
    assert runner.status == "successful", runner.stdout_text
    report = writer.verify()
    assert report.acknowledged > 0
    assert report.lost == 0, report.missing_ids

    promoted = task_results(runner, PROMOTE_TASK)[0]
    assert promoted["promoted"] and promoted["target"] == "pg-us-west"
    sync = promoted["synchronous"]
    assert sync["old_primary_setting"] is None  # the old primary was down
    assert sync["clear"] is True and sync["state"] == "degraded_async"
    assert any("set synchronous_standby_names = ''" in step for step in promoted["steps"])
    restored = task_results(runner, SYNC_TASK)[0]
    assert restored["blocked"] is False
    record = stats(runner)["artifact_data"]["failsafe_postgresql_failover"]
    assert record["synchronous_state"] == "synchronous"
    assert_west_synchronous_naming_east(pg_pair)


SYNC_PLAYBOOK = "playbooks/postgresql_sync_replication.yml"
SET_TASK = "Set synchronous_standby_names and synchronous_commit on the primary"


def test_the_playbook_turns_synchronous_mode_on_and_off(pg_pair, run_playbook):
    check = run_playbook(SYNC_PLAYBOOK, check=True, diff=True)
    assert check.status == "successful", check.stdout_text
    planned = task_results(check, SET_TASK)[0]
    assert planned["changed"] and planned["synchronous_standby_names"] == "ANY 1 (us_west)"
    assert pg_pair.scalar(pg_pair.east, "SHOW synchronous_standby_names") == ""

    real = run_playbook(SYNC_PLAYBOOK)
    assert real.status == "successful", real.stdout_text
    assert task_results(real, SET_TASK)[0]["blocked"] is False
    assert pg_pair.scalar(pg_pair.east, "SHOW synchronous_standby_names") == "ANY 1 (us_west)"
    again = run_playbook(SYNC_PLAYBOOK)
    assert again.status == "successful" and not task_results(again, SET_TASK)[0]["changed"]

    off = run_playbook(SYNC_PLAYBOOK, extravars={"postgresql_sync_mode": "async"})
    assert off.status == "successful", off.stdout_text
    assert pg_pair.scalar(pg_pair.east, "SHOW synchronous_standby_names") == ""


def test_inventory_intent_makes_the_new_primary_synchronous(pg_pair, run_playbook):
    """The pair runs asynchronously, but the inventory says the cluster is synchronous
    (failsafe_pg_synchronous): after the switchover the new primary names the old one."""
    runner = run_playbook(SWITCHOVER, limit="us-west",
                          extravars={"failsafe_pg_synchronous": True})
    assert runner.status == "successful", runner.stdout_text
    sync = task_results(runner, SWITCH_TASK)[0]["synchronous"]
    assert sync["mode"] == "on" and sync["old_primary_setting"] == ""
    assert sync["state"] == "degraded_async"
    assert_west_synchronous_naming_east(pg_pair)
