"""The PostgreSQL playbooks, run through ansible-runner (AWX's interface) against the test lab.

Assertions read ansible-runner's events (task results, set_stats artifacts), never scraped
text, and the real state is checked with independent psycopg sessions.
"""

from __future__ import annotations

import json
import time

from lab.writer import Writer

SWITCHOVER = "playbooks/postgresql_switchover.yml"
FAILOVER = "playbooks/postgresql_failover.yml"
SWITCH_TASK = "Fence, catch up and promote in one call"
PROMOTE_TASK = "Check every node and promote the most advanced standby in one call"
REJOIN_TASK = "Make the node a streaming standby of the primary"


def task_results(runner, task_name):
    """Results of one task (ok or failed), from the runner's events."""
    return [e["event_data"]["res"] for e in runner.events
            if e.get("event") in ("runner_on_ok", "runner_on_failed")
            and e["event_data"].get("task") == task_name]


def failures(runner):
    return [e["event_data"]["res"] for e in runner.events if e.get("event") == "runner_on_failed"]


def stats(runner):
    return next(e["event_data"] for e in runner.events if e.get("event") == "playbook_on_stats")


def changed_tasks(runner):
    return [e["event_data"]["task"] for e in runner.events
            if e.get("event") == "runner_on_ok" and e["event_data"]["res"].get("changed")]


def assert_east_primary_west_standby(pair):
    assert not pair.in_recovery(pair.east)
    assert not pair.read_only(pair.east)
    assert pair.in_recovery(pair.west)


def test_switchover_check_mode_reports_and_changes_nothing(pg_pair, run_playbook):
    runner = run_playbook(SWITCHOVER, limit="us-west", check=True, diff=True)
    assert runner.status == "successful", runner.stdout_text
    planned = task_results(runner, SWITCH_TASK)
    assert planned and planned[0]["changed"] and planned[0]["switched"]
    assert planned[0]["diff"]["after"]["primary"] == pg_pair.west.address
    assert not task_results(runner, REJOIN_TASK), "check mode must not run the rejoin"
    assert_east_primary_west_standby(pg_pair)
    pg_pair.insert(pg_pair.east, "still writable after check mode")


def test_switchover_loses_nothing_rejoins_and_is_idempotent(pg_pair, run_playbook, tmp_path):
    writer = Writer([(pg_pair.east.host, pg_pair.east.port),
                     (pg_pair.west.host, pg_pair.west.port)],
                    pg_pair.east.user, pg_pair.east.password, run_id=f"it-{time.time()}")
    writer.start()
    try:
        runner = run_playbook(SWITCHOVER, limit="us-west",
                              extravars={"postgresql_switchover_report_dir": str(tmp_path)})
        time.sleep(0.5)
    finally:
        writer.stop()
    assert runner.status == "successful", runner.stdout_text
    report = writer.verify()
    assert report.acknowledged > 0
    assert report.lost == 0, report.missing_ids

    record = stats(runner)["artifact_data"]["failsafe_postgresql_switchover"]
    assert record["source"] == "pg-us-east" and record["target"] == "pg-us-west"
    assert 0 < record["timings"]["write_unavailable"] < record["timings"]["total"]
    written = json.loads(next(tmp_path.glob("postgresql_switchover-*.json")).read_text())
    assert written["timings"] == record["timings"]
    rejoin = task_results(runner, REJOIN_TASK)
    assert rejoin and rejoin[0]["streaming"] and rejoin[0]["method"] in ("rewind", "reconfigure")

    # Independent view: us-west is the writable primary, us-east streams from it.
    assert not pg_pair.in_recovery(pg_pair.west) and not pg_pair.read_only(pg_pair.west)
    assert pg_pair.in_recovery(pg_pair.east)
    assert pg_pair.receiver(pg_pair.east)["sender_host"] == pg_pair.west.host
    row = pg_pair.insert(pg_pair.west, "after switchover")
    assert pg_pair.wait_row(pg_pair.east, row)

    again = run_playbook(SWITCHOVER, limit="us-west")
    assert again.status == "successful", again.stdout_text
    assert changed_tasks(again) == [], "a second run must change nothing"
    assert task_results(again, SWITCH_TASK)[0]["already_switched"]


def test_switchover_refused_when_the_primary_is_down(pg_pair, run_playbook):
    pg_pair.crash(pg_pair.east)
    runner = run_playbook(SWITCHOVER, limit="us-west")
    assert runner.status == "failed"
    messages = " ".join(f.get("msg", "") for f in failures(runner))
    assert "Unreachable nodes: ['pg-us-east']" in messages
    assert "Nothing was changed" in messages or "nothing was changed" in messages
    assert pg_pair.in_recovery(pg_pair.west), "the standby must not have been promoted"


def test_failover_refused_while_the_primary_is_writable(pg_pair, run_playbook):
    runner = run_playbook(FAILOVER, limit="us-west")
    assert runner.status == "failed"
    messages = " ".join(f.get("msg", "") for f in failures(runner))
    assert "pg-us-east answers as a writable primary" in messages
    assert all(not r["promoted"] for r in task_results(runner, PROMOTE_TASK))
    assert_east_primary_west_standby(pg_pair)


def test_failover_promotes_records_the_loss_estimate_and_rejoins(pg_pair, run_playbook):
    before = pg_pair.insert(pg_pair.east, "before the crash")
    pg_pair.wait_replayed()
    pg_pair.crash(pg_pair.east)
    budget = {"postgresql_failover_max_data_loss_seconds": 60}
    runner = run_playbook(FAILOVER, limit="us-west", extravars=budget)
    assert runner.status == "successful", runner.stdout_text

    promoted = task_results(runner, PROMOTE_TASK)[0]
    assert promoted["promoted"] and promoted["target"] == "pg-us-west"
    east = next(n for n in promoted["nodes"] if n["name"] == "pg-us-east")
    assert east["reachable"] is False
    record = stats(runner)["artifact_data"]["failsafe_postgresql_failover"]
    assert record["target"] == "pg-us-west" and record["old_primary"] == "pg-us-east"
    assert record["data_loss"]["bytes"] is None
    assert record["data_loss"]["received_lsn"]
    # A commit was replayed just before the crash, so the window is known and small.
    assert 0 <= float(record["data_loss_window_seconds_at_most"]) < 60

    assert not pg_pair.in_recovery(pg_pair.west)
    assert pg_pair.scalar(pg_pair.west, "SELECT count(*) FROM failsafe_it WHERE id = %s",
                          (before,)) == 1
    # The crashed old primary was recovered, rewound and follows the new primary.
    assert pg_pair.in_recovery(pg_pair.east)
    assert pg_pair.receiver(pg_pair.east)["status"] == "streaming"
    row = pg_pair.insert(pg_pair.west, "after failover")
    assert pg_pair.wait_row(pg_pair.east, row)

    again = run_playbook(FAILOVER, limit="us-west", extravars=budget)
    assert again.status == "successful", again.stdout_text
    assert changed_tasks(again) == [], "a second run must change nothing"
    repeated = task_results(again, PROMOTE_TASK)[0]
    assert repeated["already_failed_over"] and not repeated["promoted"]
    # The old primary rejoined: a healthy cluster, not "already failed over".
    assert repeated["msg"].startswith("pg-us-west is the writable primary")
    assert repeated["data_loss"]["window_seconds_at_most"] is None


def test_failover_without_a_loss_budget_is_refused(pg_pair, run_playbook):
    pg_pair.crash(pg_pair.east)
    runner = run_playbook(FAILOVER, limit="us-west")
    assert runner.status == "failed"
    messages = " ".join(f.get("msg", "") for f in failures(runner))
    assert "postgresql_failover_max_data_loss_seconds" in messages
    assert "postgresql_failover_accept_data_loss=true" in messages
    assert "Nothing was changed" in messages
    assert pg_pair.in_recovery(pg_pair.west), "the standby must not have been promoted"


def test_playbook_output_never_shows_a_secret(pg_pair, run_playbook, lab_secrets):
    runner = run_playbook(SWITCHOVER, limit="us-west", check=True, verbosity=3)
    assert runner.status == "successful", runner.stdout_text
    dumped = json.dumps(list(runner.events))
    for secret in lab_secrets:
        assert secret not in dumped
